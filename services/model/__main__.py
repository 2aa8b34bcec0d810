"""``python -m services.model``."""

import sys

from services.model.service import main

sys.exit(main())
