"""Built-in scenarios: deterministic event generators with natural labels."""

from services.producer.scenarios.base import LabelledEvent, Scenario
from services.producer.scenarios.clicks import ClicksScenario

SCENARIOS: dict[str, type[Scenario]] = {"clicks": ClicksScenario}

__all__ = ["SCENARIOS", "ClicksScenario", "LabelledEvent", "Scenario"]
