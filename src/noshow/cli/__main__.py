"""``python -m noshow.cli``: the command line."""

import sys

from noshow.cli import main

sys.exit(main())
