"""``python -m services.producer``: stream the configured scenario."""

import sys

from services.producer.service import main

sys.exit(main())
