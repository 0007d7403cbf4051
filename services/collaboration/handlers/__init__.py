"""Verifying and applying records other counties send."""
