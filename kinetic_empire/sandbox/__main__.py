"""``python -m kinetic_empire.sandbox``: the same as ``kinetic sandbox``."""

from __future__ import annotations

import argparse
import sys

from .cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="kinetic sandbox", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
