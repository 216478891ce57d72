"""``python -m kinetic_empire.cli``: the same as ``kinetic``."""

import sys

from . import main

sys.exit(main())
