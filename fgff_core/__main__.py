"""``python -m fgff_core``: see ``fgff_core.cli``."""

import sys

from .cli import main

sys.exit(main())
