"""``python -m services.metrics_sink``."""

import sys

from services.metrics_sink.service import main

sys.exit(main())
