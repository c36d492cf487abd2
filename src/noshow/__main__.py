"""``python -m noshow``: the same as the ``noshow`` command."""

import sys

from noshow.cli import main

sys.exit(main())
