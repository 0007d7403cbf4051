"""Console pages: each module here exposing `ROUTES` (and optionally `NAV`) is mounted by app.py."""
