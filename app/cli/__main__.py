"""``python3 -m app.cli``: the ``msvae`` command."""

import sys

from app.cli import main

sys.exit(main())
