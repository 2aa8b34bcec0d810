"""``streamml report``: read a run's topics, summarise them, write ``index.html`` and its charts.

>>> from datetime import UTC, datetime
>>> parse_since("90m", now=datetime(2026, 1, 1, 12, 0, tzinfo=UTC)).isoformat()
'2026-01-01T10:30:00+00:00'
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from schemas.truth import GroundTruth
from services.cli.report.aggregate import summarise
from services.cli.report.axis import MIN_TIME_BUCKETS, AxisChoice
from services.cli.report.page import PageContext, render_page
from services.cli.report.read import read_run
from services.cli.report.records import ReportError, RunRecords
from services.cli.report.render import render_charts, require_matplotlib
from services.common.settings import Settings

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    parser.add_argument("--prefix", default=None,
                        help="topic prefix of the run (default: $STREAMML_TOPIC_PREFIX)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for index.html and the charts "
                             "(default: .streamml/reports/<UTC time>)")
    parser.add_argument("--since", default=None, metavar="TIME",
                        help="only messages published since TIME: ISO 8601 "
                             "(2026-05-01T12:00:00Z) or a span back from now (30m, 2h, 1d)")
    parser.add_argument("--truth", type=Path, default=None, metavar="FILE",
                        help="a run's truth.json (streamml produce --truth) to shade its "
                             "drift phases")
    parser.add_argument("--bucket", type=float, default=None, metavar="WIDTH",
                        help="width of the buckets: seconds of event time, or events on the "
                             "stream position axis (default: at most 60 buckets)")
    parser.add_argument("--axis", choices=("auto", "time", "events"), default="auto",
                        help="draw over event time or stream position; auto (the default) "
                             "draws over event time when it spreads over at least "
                             f"{MIN_TIME_BUCKETS} buckets")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="give up if the topics cannot be read to their end by then")


def run_report(args: argparse.Namespace, home: Path) -> int:
    """Make the report the parsed ``args`` ask for; print where it is. Returns the exit code:
    0, or 2 with one line on stderr when the report cannot be made."""
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now) if args.since else None
        truth = _load_truth(args.truth)
        settings = Settings() if args.prefix is None else Settings(topic_prefix=args.prefix)
        out = args.out or home / "reports" / now.strftime("%Y%m%dT%H%M%SZ")
        require_matplotlib()  # before reading the topics, which may take a while
        records = read_run(settings.kafka, settings.topic_prefix, since, args.timeout)
        context = PageContext(settings.topic_prefix, now, since,
                              str(args.truth) if args.truth else None)
        page = write_report(records, out, context, args.bucket, truth, args.axis)
    except ReportError as error:
        print(f"streamml report: {error}", file=sys.stderr)
        return 2
    print(f"report: {page} ({len(records.predictions)} predictions, "
          f"{len(records.outcomes)} outcomes, {len(records.alerts)} drift alerts)")
    return 0


def write_report(records: RunRecords, out: Path, context: PageContext,
                 bucket_seconds: float | None = None, truth: GroundTruth | None = None,
                 axis: AxisChoice = "auto") -> Path:
    """Summarise ``records`` and write ``out/index.html`` and its PNG charts; return the page.

    matplotlib is imported only here (through :func:`render_charts`), never at import time.
    """
    summary = summarise(records, bucket_seconds, truth, axis)
    out.mkdir(parents=True, exist_ok=True)
    charts = render_charts(summary, out)
    page = out / "index.html"
    page.write_text(render_page(summary, charts, context), encoding="utf-8")
    return page


def parse_since(text: str, now: datetime) -> datetime:
    """``text`` as an aware time: ISO 8601 (naive means UTC) or a span before ``now``
    (``45s``, ``30m``, ``2h``, ``1d``). Raises :class:`ReportError` for anything else."""
    match = DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise ReportError(f"--since {text!r}: expected an ISO 8601 time or a span like 30m, "
                          "2h, 1d") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _load_truth(path: Path | None) -> GroundTruth | None:
    if path is None:
        return None
    try:
        return GroundTruth.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        raise ReportError(f"--truth {path}: {error}") from error
