"""``python -m services.metrics_sink``."""

import sys

from services.common.runtime import run_service
from services.metrics_sink.service import main

sys.exit(run_service("metrics-sink", main))
