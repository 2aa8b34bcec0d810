"""The alerting rules and Prometheus configs pass promtool: ``check rules``, ``check config`` on
both configs, and the rules' unit tests (``promtool test rules``), each alert with a case that
fires and one that stays quiet.

promtool comes with Debian's ``prometheus`` package (scripts/install.sh installs it); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "streamml.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "streamml_test.yml"
CONFIGS = {"compose": PROMETHEUS_DIR / "prometheus.yml",
           "local": PROMETHEUS_DIR / "prometheus.local.yml"}
COMPOSE_RULES_MOUNT = "/etc/prometheus/rules/"
ALERTS = {"StreammlDriftDetected", "StreammlAccuracyDrop", "StreammlPredictionLatencyHigh",
          "StreammlConsumerLagHigh", "StreammlDeadLetterRateHigh"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool (which must be installed) and return what it did."""
    binary = shutil.which("promtool")
    assert binary, "promtool is needed: apt-get install prometheus (scripts/install.sh does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def _alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerting_rules())} rules found" in result.stdout


@pytest.mark.parametrize("flavour", sorted(CONFIGS))
def test_prometheus_config_passes_promtool_check_config(flavour: str) -> None:
    result = promtool("check", "config", str(CONFIGS[flavour]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_loads_the_rules_from_their_mount(tmp_path: Path) -> None:
    # In the container deploy/prometheus/rules is mounted at /etc/prometheus/rules: point the
    # same config at the repository's folder and the rules must be found and valid.
    text = CONFIGS["compose"].read_text(encoding="utf-8")
    assert COMPOSE_RULES_MOUNT in text
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace(COMPOSE_RULES_MOUNT, f"{RULES.parent}/"), encoding="utf-8")
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_five_alerts_are_defined_with_severity_and_explanations() -> None:
    rules = _alerting_rules()
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert "$value" in rule["annotations"]["description"], rule["alert"]


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == ALERTS, f"no firing case for {ALERTS - firing}"
    assert quiet == ALERTS, f"no quiet case for {ALERTS - quiet}"


def test_rule_tests_load_the_rules_file() -> None:
    files = _yaml(RULE_TESTS)["rule_files"]
    assert [(RULE_TESTS.parent / name).resolve() for name in files] == [RULES.resolve()]
