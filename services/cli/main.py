"""The `xiezuo` command line."""


def main() -> None:
    """Entry point of the `xiezuo` console script."""
