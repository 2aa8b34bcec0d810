"""``python -m services.producer``: stream the configured scenario."""

import sys

from services.common.runtime import run_service
from services.producer.service import main

sys.exit(run_service("producer", main))
