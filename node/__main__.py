"""`python -m node --config FILE`: run one node."""

import argparse
import sys

from node.app import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m node", description=__doc__)
    parser.add_argument("--config", required=True, help="node config file (YAML)")
    sys.exit(main(parser.parse_args().config))
