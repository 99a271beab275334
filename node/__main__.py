"""`python -m node --config FILE`: run one node."""

import argparse
import os
import sys

# Plugin discovery scans every installed distribution (importlib.metadata, zipfile, csv...): a
# node has no pydantic plugins, and an idle node's memory is a target (scripts/bench.py).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from node.app import main  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m node", description=__doc__)
    parser.add_argument("--config", required=True, help="node config file (YAML)")
    sys.exit(main(parser.parse_args().config))
