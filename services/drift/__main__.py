"""``python -m services.drift``."""

import sys

from services.common.runtime import run_service
from services.drift.service import main

sys.exit(run_service("drift", main))
