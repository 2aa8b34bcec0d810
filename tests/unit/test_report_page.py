"""The report's charts and page, written from records in memory (no broker)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from matplotlib.image import imread

from schemas.truth import GroundTruth, PhaseSpan
from services.cli.report.aggregate import summarise
from services.cli.report.command import parse_since, write_report
from services.cli.report.page import PageContext, render_page
from services.cli.report.records import DeadLetterRecord, ReportError, RunRecords
from services.cli.report.render import render_charts, require_matplotlib, time_axis
from tests import report_run as run

NOW = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic() -> RunRecords:
    return RunRecords(run.predictions(), run.outcomes(), run.alerts(), run.model_events(),
                      [DeadLetterRecord("labels", "late_label", "model")], {"outcomes": 1})


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run's report, written once for the tests that only read it."""
    folder = tmp_path_factory.mktemp("report")
    return write_report(synthetic(), folder, PageContext("acme.", NOW))


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_charts_are_valid_pngs_with_more_than_one_colour(tmp_path: Path) -> None:
    charts = render_charts(summarise(synthetic()), tmp_path)
    assert [chart.file for chart in charts] == ["accuracy.png", "latency.png", "label_delay.png"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(c.file for c in charts)
    for chart in charts:
        path = tmp_path / chart.file
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 1000
        assert len({tuple(pixel) for pixel in pixels[::7, ::7].reshape(-1, pixels.shape[2])}) > 5


def test_an_empty_run_has_no_charts_and_a_page_that_says_so(tmp_path: Path) -> None:
    page = write_report(RunRecords(), tmp_path, PageContext("acme.", NOW))
    html = page.read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.html"]
    assert image_sources(html) == []
    assert "No outcomes yet." in html and "No drift alerts." in html


def test_the_page_shows_each_chart_file_and_the_run_figures(written: Path) -> None:
    html = written.read_text()
    assert image_sources(html) == ["accuracy.png", "latency.png", "label_delay.png"]
    assert all((written.parent / source).is_file() for source in image_sources(html))
    for figure in ("62.5%", "65.0%", "24.5 ms", "adwin",
                   "error:logreg", "sequential test", "late_label", "200 events had no label"):
        assert figure in html, figure
    assert "1 message(s) on <code>outcomes</code> did not decode" in html


def test_the_page_is_self_contained_and_starts_unchecked(written: Path) -> None:
    html = written.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(" not in html
    assert '<body data-render="pending">' in html
    assert 'id="render-status"' in html


def test_names_from_the_topics_are_escaped() -> None:
    outcome = run.outcomes()[0].model_copy(update={"model": "<script>alert(1)</script>"})
    html = render_page(summarise(RunRecords(outcomes=[outcome])), [], PageContext("", NOW))
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ground_truth_phases_get_a_table(tmp_path: Path) -> None:
    truth = GroundTruth(scenario="clicks", start=run.T0, interval_seconds=1.0, phases=(
        PhaseSpan(name="layout-change", kind="concept_drift", start_index=300, end_index=600,
                  start_time=run.at(300)),))
    html = write_report(synthetic(), tmp_path, PageContext("", NOW, truth="truth.json"),
                        truth=truth).read_text()
    assert "Ground truth drift phases" in html and "layout-change" in html


def test_missing_matplotlib_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ReportError, match=r"pip install 'streamml\[report\]'"):
        require_matplotlib()


def test_time_axis_unit_follows_the_span() -> None:
    assert time_axis(599) == (1.0, "s")
    assert time_axis(3600) == (60.0, "min")
    assert time_axis(86400) == (3600.0, "h")


def test_since_takes_iso_times_and_spans_back_from_now() -> None:
    assert parse_since("2h", NOW) == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert parse_since("45s", NOW) == datetime(2026, 3, 1, 12, 59, 15, tzinfo=UTC)
    assert parse_since("2026-03-01T12:30:00Z", NOW) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_since("2026-03-01T12:30:00", NOW).tzinfo == UTC
    with pytest.raises(ReportError, match="30m"):
        parse_since("yesterday", NOW)
