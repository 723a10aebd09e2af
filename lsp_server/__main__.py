"""``python -m lsp_server`` = ``tlens-lsp`` (``serve`` when given no command)."""

import sys

from .cli import main

sys.exit(main())
