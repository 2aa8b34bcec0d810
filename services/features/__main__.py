"""``python -m services.features``."""

import sys

from services.features.app import main

sys.exit(main())
