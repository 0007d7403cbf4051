"""Collaboration tables, repositories and migrations."""
