"""The synthetic drift benchmark's command and its Markdown report.

:func:`cmd_synthetic` plans the runs of :mod:`services.cli.drift_benchmark` from the
``evaluate-drift --synthetic`` arguments, runs them, prints one progress line per run and then
the report (:func:`render`): the table of every stream under every label timing and, per timing,
the issue's two targets (no false alarm on stationary streams; abrupt concept drift detected
within :data:`~services.cli.drift_benchmark.TARGET_DELAY_EVENTS` events, median). ``--json`` saves
the report's figures and every run's alerts; ``--markdown`` the printed report.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from services.cli.drift_benchmark import (
    KINDS,
    TARGET_DELAY_EVENTS,
    CaseResult,
    Row,
    grace_for,
    plan,
    rows_of,
    run_cases,
    totals,
)
from services.cli.synth_streams import TIMINGS, default_recipes

QUICK_SCALE = 0.2
"""``--quick``: every stream at a fifth of its length, one seed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--synthetic`` flags of ``evaluate-drift``."""
    group = parser.add_argument_group("synthetic streams (--synthetic)")
    group.add_argument("--synthetic", action="store_true",
                       help="score River's synthetic streams (SEA, Agrawal, Hyperplane, STAGGER) "
                            "with known change points under every label timing instead")
    group.add_argument("--quick", action="store_true",
                       help=f"with --synthetic: streams at {QUICK_SCALE:g} of their length, "
                            "one seed")
    group.add_argument("--seeds", type=int, default=3, metavar="N",
                       help="with --synthetic: seeds SEED .. SEED+N-1 for the drift streams "
                            "(default 3)")
    group.add_argument("--stationary-seeds", type=int, default=1, metavar="N",
                       help="with --synthetic: seeds for the 100,000-event stationary streams "
                            "(default 1)")
    group.add_argument("--streams", default=None, metavar="A,B",
                       help="with --synthetic: only these streams (default: all)")
    group.add_argument("--timings", default=",".join(TIMINGS), metavar="A,B",
                       help=f"with --synthetic: label timings (default {','.join(TIMINGS)})")
    group.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                       help="with --synthetic: runs in parallel (default: one per CPU)")
    group.add_argument("--markdown", default=None, metavar="FILE",
                       help="with --synthetic: also write the printed report here")


def cmd_synthetic(args: argparse.Namespace) -> int:
    """Run, print (and save) the synthetic benchmark the arguments describe."""
    quick = bool(args.quick)
    recipes = default_recipes(QUICK_SCALE if quick else 1.0)
    if args.streams:
        wanted = args.streams.split(",")
        unknown = sorted(set(wanted) - {recipe.name for recipe in recipes})
        if unknown:
            raise ValueError(f"unknown streams {unknown}; known: "
                             f"{[recipe.name for recipe in recipes]}")
        recipes = [recipe for recipe in recipes if recipe.name in wanted]
    names = args.timings.split(",")
    if not set(names) <= set(TIMINGS):
        raise ValueError(f"unknown timings in {names}; known: {list(TIMINGS)}")
    timings = [TIMINGS[name] for name in names]
    count, stationary_count = (1, 1) if quick else (args.seeds, args.stationary_seeds)
    if count < 1 or stationary_count < 1 or args.jobs < 1:
        raise ValueError("--seeds, --stationary-seeds and --jobs must be at least 1")
    cases = plan(recipes, timings, [args.seed + i for i in range(count)],
                 [args.seed + i for i in range(stationary_count)])
    load_before, began, started = os.getloadavg(), time.perf_counter(), datetime.now(UTC)
    print(f"{len(cases)} runs on {args.jobs} process(es)", flush=True)

    def progress(result: CaseResult) -> None:
        case, score = result.case, result.score
        print(f"  {case.recipe.name:<24}{case.timing.name:<10}seed {case.seed}: "
              f"{score.events:,} events, {len(result.alerts)} alerts, "
              f"{result.wall_seconds:.0f}s", flush=True)

    results = run_cases(cases, args.jobs, progress)
    about = {
        "date": started.isoformat(timespec="seconds"),
        "command": "streamml evaluate-drift " + shlex.join(sys.argv[2:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}, River {_river_version()}",
        "load_average_start": [round(x, 2) for x in load_before],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - began, 1), "jobs": args.jobs,
        "quick": quick,
        "timings": {t.name: {"label_delay_events": t.delay, "feedback_window_events": t.window,
                             "on_timeout": t.on_timeout, "grace_events": grace_for(t)}
                    for t in timings},
    }
    rows = rows_of(results)
    report = render(rows, about)
    print()
    print(report)
    if args.markdown:
        _write(args.markdown, report.encode() + b"\n")
    if args.json is not None:
        document = {**about, "rows": [row.to_json() for row in rows],
                    "runs": [result.to_json() for result in results]}
        _write(str(args.json), orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


def _write(path: str, data: bytes) -> None:
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"saved {target}")


def _river_version() -> str:
    from importlib.metadata import version

    return version("river")


def render(rows: list[Row], about: dict[str, Any]) -> str:
    """The report: what ran, the table, and per timing the targets' verdicts."""
    timings = about.get("timings", {})
    lines = [
        f"{about.get('date', '')} · {about.get('machine', '')} · load average at start / end: "
        f"{about.get('load_average_start')} / {about.get('load_average_end')} · "
        f"{about.get('wall_seconds')} s on {about.get('jobs')} process(es) · "
        f"`{about.get('command', '')}`",
        "",
        "Label timings (events; one event per second of event time): "
        + "; ".join(f"{name}: delay {_number(t['label_delay_events'], 1)}, window "
                    f"{_number(t['feedback_window_events'], 0)}, on_timeout {t['on_timeout']}, "
                    f"grace {t['grace_events']:,}" for name, t in timings.items()),
        "",
        "| stream | change | labels | seeds | events | detected | median delay | p90 delay | "
        + " | ".join(f"{kind} FA/100k" for kind in KINDS) + " |",
        "|---|---|---|---|---:|---:|---:|---:|" + "---:|" * len(KINDS),
    ]
    for row in rows:
        detected = "—" if not row.changes else f"{row.detected}/{row.changes}"
        lines.append(
            f"| {row.stream} | {row.change} | {row.timing} | {len(row.seeds)} | {row.events:,} "
            f"| {detected} | {_number(row.median_delay, 0)} | {_number(row.p90_delay, 0)} | "
            + " | ".join(_alarms(row.false_alarms.get(kind, 0), row.per_100k(kind))
                         for kind in KINDS) + " |")
    lines += ["", "FA/100k: false alarms per 100,000 events outside the grace windows (count in "
                  "brackets); delays in events from the change (the ramp's start when gradual), "
                  "counted on the event stream, so a label lag is part of them.", ""]
    for timing in dict.fromkeys(row.timing for row in rows):
        lines += _verdicts(timing, [row for row in rows if row.timing == timing])
    return "\n".join(lines)


def _verdicts(timing: str, rows: list[Row]) -> list[str]:
    lines = []
    stationary = [row for row in rows if row.change == "none"]
    if stationary:
        summed = totals(stationary)
        found = sum(summed.false_alarms.values())
        kinds = ", ".join(f"{kind} {summed.false_alarms.get(kind, 0)}" for kind in KINDS)
        lines.append(f"- {timing}: stationary streams, {summed.events:,} events: {found} false "
                     f"alarm(s) ({kinds}); target 0: {'met' if found == 0 else 'not met'}")
    abrupt = [row for row in rows if row.change == "abrupt"]
    if abrupt:
        delays = [float(delay) for row in abrupt for delay in row.delays]
        changes = sum(row.changes for row in abrupt)
        median = statistics.median(delays + [math.inf] * (changes - len(delays))) if (
            changes) else None
        verdict = "met" if median is not None and median <= TARGET_DELAY_EVENTS else "not met"
        said = "—" if median is None else (
            "never" if math.isinf(median) else f"{median:,.0f} events")
        lines.append(f"- {timing}: abrupt concept drift, {len(delays)}/{changes} changes "
                     f"detected, median delay {said} (a change not detected counts as never); "
                     f"target ≤ {TARGET_DELAY_EVENTS}: {verdict}")
    return lines


def _alarms(count: int, rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1f} ({count})"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
