"""``python -m services.features``."""

import sys

from services.common.runtime import run_service
from services.features.worker import main

sys.exit(run_service("features", main))
