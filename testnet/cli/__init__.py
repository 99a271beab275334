"""The `testnet` command line: one click group, its commands split by what they act on."""

from testnet.cli.main import main

__all__ = ["main"]
