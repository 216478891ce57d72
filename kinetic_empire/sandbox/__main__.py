"""``python -m kinetic_empire.sandbox``: the same as ``kinetic sandbox``."""

from __future__ import annotations

import argparse
import sys

from ..cli.sandbox import DESCRIPTION, add_arguments
from .cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="kinetic sandbox", description=DESCRIPTION)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
