"""`python -m apcscale COMMAND ...`: the `apcscale` command without the console script."""

import sys

from apcscale.cli import main

sys.exit(main())
