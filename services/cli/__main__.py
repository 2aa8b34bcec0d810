"""``python -m services.cli`` is the ``streamml`` command."""

import sys

from services.cli.main import main

sys.exit(main())
