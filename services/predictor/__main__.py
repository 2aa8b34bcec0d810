"""``python -m services.predictor``."""

import sys

from services.common.runtime import run_service
from services.predictor.service import main

sys.exit(run_service("predictor", main))
