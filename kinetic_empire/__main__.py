"""``python -m kinetic_empire``: the same as ``kinetic``."""

import sys

from .cli import main

sys.exit(main())
