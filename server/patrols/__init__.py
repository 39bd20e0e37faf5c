"""Patrols (巡查): the track check of a push, the patrol map, coverage, the frequency plan and the fixed points.

``checks`` is what server/sync/apply.py asks of a pushed track batch; ``geometry`` the cells and
distances; ``service`` reads patrols, tracks, fixed points, visits and events; ``coverage`` the figures
per grid and day or week (with their cache, migration 0009); ``plan`` the frequency plan and its
records; ``views`` the pages, ``cli`` ``flask patrols plan``, ``demo`` the demo's patrols.
"""
