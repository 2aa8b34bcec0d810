"""``streamml backtest``: would another spec have done better on what the topics recorded?

Reads a run's ``events``, ``labels``, ``outcomes`` and ``drift-alerts`` under a topic prefix
(from ``--since``, up to ``--until`` in event time), replays the events and labels through the
candidate spec's features, model and drift logic in event time (:mod:`.backtest_replay`: the
services' own code, in this process, nothing written to Kafka), and sets the candidate's
champion against the champion outcomes the run recorded, on the same events. Prints the table;
``--out DIR`` also writes ``backtest.json`` and a page, ``backtest.html``.
"""

from __future__ import annotations

import argparse
import html
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.spec import load_spec
from services.cli.backtest_replay import Comparison, Side, compare, replay


def add_parser(commands: Any) -> None:
    """Declare the ``backtest`` subcommand on ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "backtest", help="replay recorded topics through a candidate spec and compare",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prefix", default="", help="topic prefix of the recorded run")
    parser.add_argument("--spec", required=True, metavar="NAME|FILE",
                        help="the candidate spec (built-in name or TOML file)")
    parser.add_argument("--since", type=datetime.fromisoformat, default=None, metavar="ISO",
                        help="only records written at or after this time (e.g. "
                             "2026-12-06T10:00:00+00:00)")
    parser.add_argument("--until", type=datetime.fromisoformat, default=None, metavar="ISO",
                        help="only events (and their labels) of event time before this")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write backtest.json and backtest.html here")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to read the topics to their end (default 300)")
    parser.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    """Read, replay, compare, print and (with ``--out``) write."""
    from services.cli.report.read import read_run
    from services.common.settings import Settings

    for moment in (args.since, args.until):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{moment.isoformat()}: give a time zone (e.g. +00:00)")
    spec = load_spec(args.spec)
    records = read_run(Settings().kafka, args.prefix, since=args.since, timeout=args.timeout,
                       topics=("events", "labels", "outcomes", "drift-alerts"))
    events = [e for e in records.events if args.until is None or e.event_time < args.until]
    kept = {event.event_id for event in events}
    labels = [label for label in records.labels if label.event_id in kept]
    outcomes = [outcome for outcome in records.outcomes if outcome.event_id in kept]
    if not events:
        raise ValueError(f"no events recorded on '{args.prefix}events' in that range")
    candidate = replay(spec, events, labels)
    comparison = compare(outcomes, records.alerts, candidate)
    about = {"prefix": args.prefix, "spec": spec.name,
             "estimators": {m.name: m.estimator for m in
                            (spec.models.champion, *spec.models.challengers)},
             "events": len(events), "labels": len(labels),
             "since": args.since.isoformat() if args.since else None,
             "until": args.until.isoformat() if args.until else None,
             "dead_letters": candidate.dead_letters}
    print(f"recorded run '{args.prefix}': {len(events):,} events, {len(labels):,} labels, "
          f"{len(outcomes):,} outcomes; candidate spec {spec.name} "
          f"({', '.join(f'{k}: {v}' for k, v in about['estimators'].items())})")
    print(render(comparison))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        document = {**about, **comparison.to_json()}
        (args.out / "backtest.json").write_bytes(
            orjson.dumps(document, option=orjson.OPT_INDENT_2))
        (args.out / "backtest.html").write_text(page(about, comparison))
        print(f"wrote {args.out / 'backtest.json'} and {args.out / 'backtest.html'}")
    return 0


def _cell(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(comparison: Comparison) -> list[list[str]]:
    def row(side: Side) -> list[str]:
        alerts = ", ".join(f"{kind} {n}" for kind, n in side.alerts.items()) or "none"
        return [side.name, ", ".join(side.models), f"{side.judged:,}", f"{side.scored:,}",
                _cell(side.accuracy),
                _cell(side.log_loss), _cell(side.mae), alerts]
    return [row(comparison.recorded), row(comparison.candidate)]


HEADER = ["champion", "models", "answered", "scored (both answered)", "accuracy", "log loss",
          "MAE", "drift alerts"]


def render(comparison: Comparison) -> str:
    """The comparison as a Markdown table and the test's line."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _rows(comparison)]
    statistic = ", ".join(f"{k} {v:g}" for k, v in comparison.statistic.items())
    lines.append(f"\n{comparison.events:,} events compared; {comparison.test}: {statistic}, "
                 f"p = {_cell(comparison.p_value, 4)}")
    return "\n".join(lines)


def page(about: dict[str, Any], comparison: Comparison) -> str:
    """A self-contained HTML page of the backtest."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                   for cells in _rows(comparison))
    statistic = ", ".join(f"{k} {v:g}" for k, v in comparison.statistic.items())
    estimators = ", ".join(f"{k}: {v}" for k, v in about["estimators"].items())
    return (
        "<!doctype html><meta charset='utf-8'><title>streamml backtest</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ddd;text-align:left}</style>"
        f"<h1>Backtest of spec {html.escape(about['spec'])}</h1>"
        f"<p>Recorded run <code>{html.escape(about['prefix'] or '(no prefix)')}</code>: "
        f"{about['events']:,} events, {about['labels']:,} labels. Candidate models: "
        f"{html.escape(estimators)}. Replayed in event time through the services' own logic, "
        "with the candidate's feedback windows and timeout policy; compared on the events "
        "both champions have an outcome for.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"<p>{comparison.events:,} events compared; {html.escape(comparison.test)}: "
        f"{html.escape(statistic)}, p = {_cell(comparison.p_value)}.</p>"
    )
