"""``streamml report`` on the real broker: a synthetic run published on a fresh prefix becomes a
page with PNG charts that headless Chromium renders with no errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from schemas.codec import encode
from services.cli.report.command import write_report
from services.cli.report.page import PageContext
from services.cli.report.read import read_run
from services.cli.report.records import RunRecords
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.common.kafka import make_producer
from services.common.settings import KafkaSettings
from tests import report_run as run
from tests.integration.chromium import open_page, render_verdict

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def published_run(kafka: KafkaSettings, topics: str) -> str:
    """The synthetic run of ``tests/report_run.py`` on the topics of a fresh prefix, plus two
    dead letters and one outcome that is not JSON; returns the prefix."""
    prefix = topics
    producer = make_producer(kafka)
    for prediction in run.predictions():
        producer.produce(f"{prefix}predictions", key=prediction.event_id.encode(),
                         value=encode(prediction))
    for outcome in run.outcomes():
        producer.produce(f"{prefix}outcomes", key=outcome.event_id.encode(), value=encode(outcome))
    producer.produce(f"{prefix}outcomes", key=b"e-bad", value=b"not json")
    for alert in run.alerts():
        producer.produce(f"{prefix}drift-alerts", key=alert.target.encode(), value=encode(alert))
    for event in run.model_events():
        producer.produce(f"{prefix}model-events", key=event.model.encode(), value=encode(event))
    letters = DeadLetterPublisher(producer, f"{prefix}dead-letters", "model")
    for offset in (7, 9):
        letters.publish(b'{"label": 1}', b"e-late", f"{prefix}labels", 0, offset,
                        DeadLetter("late_label", "the label came after its feedback window"))
    assert producer.flush(30) == 0
    return prefix


def run_cli(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def assert_not_blank(png: Path) -> None:
    pixels = imread(png)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    inked = np.any(pixels < 0.9, axis=2).mean()
    assert len(colours) > 50, f"{png}: only {len(colours)} colours"
    assert inked > 0.03, f"{png}: only {inked:.1%} of the pixels are not near white"


def test_report_of_a_run_renders_in_chromium_with_no_errors(
    kafka: KafkaSettings, published_run: str, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    done = run_cli(kafka, "report", "--prefix", published_run, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1200 predictions, 1200 outcomes, 2 drift alerts" in done.stdout

    html = (out / "index.html").read_text()
    for figure in ("62.5%", "65.0%", "error:logreg", "late_label",
                   "1 message(s) on <code>outcomes</code> did not decode"):
        assert figure in html, figure
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources == ["accuracy.png", "latency.png", "label_delay.png"]
    for source in sources:
        assert (out / source).read_bytes().startswith(PNG_SIGNATURE), source
        assert_not_blank(out / source)

    page = open_page(out / "index.html", tmp_path / "profile", "--dump-dom")
    assert render_verdict(page.stdout) == ("ok", "Page check: all 3 charts shown, no errors.")
    assert page.console == []

    shot = tmp_path / "report-shot.png"
    page = open_page(out / "index.html", tmp_path / "profile", f"--screenshot={shot}",
                     "--window-size=1280,2000")
    print(f"report: {out / 'index.html'}  screenshot: {shot}")
    assert page.console == []
    assert imread(shot).shape[:2] == (2000, 1280)
    assert_not_blank(shot)


def test_the_browser_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The verdict is not vacuous: a script error, a console error and a missing chart show."""
    records = RunRecords(run.predictions(), run.outcomes())
    page = write_report(records, tmp_path / "report", PageContext("", datetime.now(UTC)))
    page.write_text(page.read_text().replace(
        "</footer>", '</footer><img src="missing.png"><script>console.error("broken");'
                     "undefinedFunction();</script>"))
    result = open_page(page, tmp_path / "profile", "--dump-dom")
    verdict, status = render_verdict(result.stdout)
    assert verdict == "failed"
    assert status is not None
    for problem in ("console error: broken", "undefinedFunction is not defined",
                    "chart not shown: missing.png"):
        assert problem in status, problem
    assert any("broken" in line for line in result.console)


def test_since_reads_only_messages_published_after_it(kafka: KafkaSettings, topics: str) -> None:
    producer = make_producer(kafka)
    two_hours_ago = int((time.time() - 7200) * 1000)
    predictions = run.predictions()[:10]
    for index, prediction in enumerate(predictions):
        producer.produce(f"{topics}predictions", key=prediction.event_id.encode(),
                         value=encode(prediction), timestamp=two_hours_ago if index < 6 else 0)
    assert producer.flush(30) == 0

    recent = read_run(kafka, topics, since=datetime.now(UTC) - timedelta(hours=1), timeout=60)
    everything = read_run(kafka, topics, timeout=60)
    # Kafka orders messages within a partition only, and predictions has several partitions.
    assert sorted(p.event_id for p in recent.predictions) == sorted(
        p.event_id for p in predictions[6:])
    assert len(everything.predictions) == 10
    assert everything.outcomes == [] and everything.alerts == []


def test_an_open_transaction_ends_the_read_at_what_is_committed(
    kafka: KafkaSettings, topics: str
) -> None:
    """The model service writes in transactions: a report taken mid-transaction must not wait
    for it, and must not show its records."""
    producer = make_producer(kafka, **{"transactional.id": f"{topics}report-test"})
    producer.init_transactions(30)
    predictions = run.predictions()[:6]
    producer.begin_transaction()
    for prediction in predictions[:3]:
        producer.produce(f"{topics}predictions", key=b"k", value=encode(prediction))
    producer.commit_transaction(30)
    producer.begin_transaction()
    for prediction in predictions[3:]:
        producer.produce(f"{topics}predictions", key=b"k", value=encode(prediction))
    assert producer.flush(30) == 0

    started = time.monotonic()
    during = read_run(kafka, topics, timeout=60)
    assert time.monotonic() - started < 30
    producer.commit_transaction(30)
    after = read_run(kafka, topics, timeout=60)
    assert [p.event_id for p in during.predictions] == [p.event_id for p in predictions[:3]]
    assert [p.event_id for p in after.predictions] == [p.event_id for p in predictions]


def test_a_prefix_without_topics_is_a_clear_error(kafka: KafkaSettings, tmp_path: Path) -> None:
    prefix = f"none{uuid.uuid4().hex[:8]}-"
    out = tmp_path / "report"
    done = run_cli(kafka, "report", "--prefix", prefix, "--out", str(out), "--timeout", "20")
    assert done.returncode == 2
    assert f"no run topics under prefix '{prefix}'" in done.stderr
    assert not out.exists()
