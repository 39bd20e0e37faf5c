"""Administration: the admin pages (views), the command line (cli) and the demo data set (demo)."""
