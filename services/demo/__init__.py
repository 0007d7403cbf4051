"""The demo county's year of work, replayed against a running platform on first `xiezuo up`."""
