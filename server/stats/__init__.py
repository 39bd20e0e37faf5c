"""Statistics: the figures a district runs on (service), their pages and JSON (views)."""
