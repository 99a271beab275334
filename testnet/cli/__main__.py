"""`python -m testnet.cli ...`: the same as the `testnet` command."""

from testnet.cli import main

main()
