"""``python -m services.model``."""

import sys

from services.common.runtime import run_service
from services.model.service import main

sys.exit(run_service("model", main))
