"""The benchmark's results as a Markdown report, and the files under ``bench/``.

:func:`render` is pure: the results document (what is written as JSON) in, Markdown out.

>>> number(1234.5), number(float("nan")), percent(0.81647), mib(3 * 1024 * 1024)
('1,234', 'n/a', '81.65%', '3')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

from services.cli.bench import anchors

SERVICE_ORDER = ("features", "model", "drift", "metrics-sink", "broker")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Any, digits: int = 0) -> str:
    """A figure with thousands separators; ``n/a`` when missing."""
    return "n/a" if _missing(value) else f"{value:,.{digits}f}"


def percent(value: Any) -> str:
    return "n/a" if _missing(value) else f"{100 * value:.2f}%"


def mib(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value / 2**20:,.0f}"


def load(entry: dict[str, Any]) -> str:
    """The 1-minute load average before and after a measurement."""
    before, after = entry.get("load_before"), entry.get("load_after")
    if not before or not after:
        return ""
    return f"{before[0]:.2f} → {after[0]:.2f}"


def triple(summary: dict[str, Any] | None) -> str:
    """``p50 / p95 / p99 ms`` of a latency summary."""
    if not summary or not summary.get("count"):
        return "n/a"
    return (f"{summary['p50']:.1f} / {summary['p95']:.1f} / {summary['p99']:.1f} ms "
            f"(n={summary['count']:,})")


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _latency_rows(run: dict[str, Any]) -> list[str]:
    at = f"at {number(run['rate'])}/s"
    flag = "" if run.get("sustained") else " (lag grew: above what the pipeline sustains)"
    return [
        _row(f"event publish → prediction readable, read_uncommitted, {at}: p50 / p95 / p99",
             triple(run.get("event_to_prediction_read_uncommitted_ms")) + flag,
             "p99 ≤ 10 ms" if run["rate"] == 1000 else "", load(run)),
        _row(f"event publish → prediction readable, read_committed, {at}",
             triple(run.get("event_to_prediction_read_committed_ms")), "", ""),
        _row(f"… of which publish → model reads the vector, {at}",
             triple(run.get("parts_ms", {}).get("publish_to_model_read")), "", ""),
        _row(f"… model reads → predicted, {at}",
             triple(run.get("parts_ms", {}).get("model_read_to_predicted")), "", ""),
        _row(f"… predicted → readable (read_uncommitted), {at}",
             triple(run.get("parts_ms", {}).get("predicted_to_readable")), "", ""),
        _row(f"label publish → champion learned it, {at}",
             triple(run.get("label_to_learned_ms")), "", ""),
    ]


def render(results: dict[str, Any]) -> str:
    """The Markdown report of one run."""
    river = results["in_process"]["river"]
    logic = results["in_process"]["service_logic"]
    pipeline = results.get("pipeline", {})
    search = pipeline.get("search", {})
    ratio = results.get("ratio", {})
    lines = [
        f"# streamml bench: {results['spec']}{' (quick)' if results.get('quick') else ''}",
        "",
        f"{results['when']} · {results['machine']} · River {results['river_version']} · "
        f"stream: {results['stream']} · champion `{results['champion']}` "
        f"({results['champion_estimator']}) · models in the pipeline: "
        f"{', '.join(results['models'])} · label delay {results['label_delay']} events "
        f"(River `delay={results['river_delay']}`) · load average at start / end: "
        f"{results['load']['start']} / {results['load']['end']}"
        + (f" · `{results['command'].strip()}`" if results.get("command") else ""),
        "",
        _row("measure", "value", "target", "load 1 min"),
        "|---|---|---|---|",
        _row(f"River in process (`progressive_val_score`, {river['events']:,} events): "
             "events/s", number(river["events_per_second"]), "", load(river)),
        _row("River in process: prequential accuracy of the champion",
             percent(river["accuracy"]), "", ""),
        _row(f"features + every model in process ({', '.join(logic['models'])}): events/s",
             number(logic["events_per_second"]), "", load(logic)),
        _row("features + every model in process: accuracy of the champion",
             percent(logic["accuracy"]), "", ""),
        *anchors.peer_rows(results),
        *anchors.drain_rows(results),
    ]
    if pipeline:
        best = search.get("sustained_max")
        lines += [
            _row("pipeline: highest rate with consumer lag bounded, events/s",
                 "none of the rates tried" if best is None else
                 f"{number(best)} ({number(search.get('predictions_per_second_at_max'))} "
                 "predictions/s)", "", ""),
            _row("pipeline / River in process", number(ratio.get("river"), 3), "≥ 0.25", ""),
            _row("pipeline / features + every model in process",
                 number(ratio.get("service_logic"), 3), "", ""),
            *anchors.sustained_rows(results),
        ]
        for run in pipeline.get("latency", []):
            lines += _latency_rows(run)
        at_best = [step for step in search.get("steps", [])
                   if step.get("rate") == best and step.get("cpu_ms_per_event")]
        if at_best:
            cpu = at_best[-1]["cpu_ms_per_event"]
            names = [name for name in SERVICE_ORDER if name in cpu]
            lines.append(_row(f"CPU per event at {number(best)}/s, ms ({' / '.join(names)}; "
                              "sum)", " / ".join(f"{cpu[name]:.2f}" for name in names)
                              + f"; {sum(cpu[name] for name in names):.2f}", "", ""))
            requests = at_best[-1].get("requests_per_event") or {}
            if requests:
                lines.append(_row(
                    f"Kafka requests per event at {number(best)}/s (all / produce / fetch)",
                    f"{requests['total']:.3f} / {requests['produce']:.3f} / "
                    f"{requests['fetch']:.3f}", "", ""))
        rss = pipeline.get("rss_bytes", {})
        names = [name for name in SERVICE_ORDER if name in rss]
        lines.append(_row(f"resident memory, MiB, peak ({' / '.join(names)})",
                          " / ".join(mib(rss[name]) for name in names), "", ""))
        if pipeline.get("checkpoint_bytes") is not None:
            lines.append(_row("model checkpoint, full (pickled state; deltas in between), largest, "
                              "KiB", number(pipeline["checkpoint_bytes"] / 1024), "", ""))
        restarted = {name: count for name, count in pipeline.get("restarts", {}).items() if count}
        if restarted:
            lines.append(_row("**services restarted during the run** (figures suspect)",
                              ", ".join(f"{name} x{count}" for name, count in restarted.items()),
                              "", ""))
        lines += ["", *_steps_table(search.get("steps", []))]
    profiles = results.get("profiles") or {}
    if profiles.get("error"):
        lines += ["", f"No profile: {profiles['error']}."]
    elif profiles:
        lines += ["", *_profile_section(profiles)]
    if results.get("peers") or results.get("drain"):
        lines += ["", anchors.NOTE]
    lines += ["", "Lag is bounded when, over a window, the backlog (events published - "
              "predictions made) ends below max(200, 1 s of the offered rate), each "
              "service's `streamml_consumer_lag_messages` below max(200, 2 s of its rate), "
              "and neither grows over the second half (by more than 3% of its rate per "
              "second, adding up to more than max(50, 1 s of its rate)); a service's rate is "
              "the offered rate times the messages it reads per event. The load average "
              "during pipeline measurements includes the benchmark's own processes (broker, "
              "four services, publisher, readers) on this machine. read_committed readers see "
              "predictions when the model's transaction commits (every "
              "`STREAMML_MODEL__COMMIT_INTERVAL_SECONDS`, 100 ms by default)."]
    return "\n".join(lines) + "\n"


def _steps_table(steps: list[dict[str, Any]]) -> list[str]:
    if not steps:
        return []
    lines = [
        "Rate steps (each offered for a window; backlog and lag in messages at the end, "
        "growth per second over the second half):",
        "",
        _row("offered/s", "achieved/s", "predictions/s", "backlog end (growth/s)",
             "lag end: features / model / drift / metrics-sink", "bounded",
             "CPU ms/event, all processes", "Kafka requests/event", "load 1 min"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        lag = step["lag"]
        lags = " / ".join(number(lag[name]["end"]) for name in lag)
        verdict = "yes" if step["sustained"] else "no" + (
            " (stopped early)" if step["stopped_early"] else "")
        lines.append(_row(number(step["rate"]), number(step["achieved_rate"]),
                          number(step["predictions_per_second"]),
                          f"{number(step['backlog']['end'])} "
                          f"({number(step['backlog']['growth_per_second'])})",
                          lags, verdict, _cpu_sum(step), _requests(step), load(step)))
    return lines


def _cpu_sum(step: dict[str, Any]) -> str:
    cpu = step.get("cpu_ms_per_event") or {}
    return f"{sum(cpu.values()):.2f}" if cpu else ""


def _requests(step: dict[str, Any]) -> str:
    requests = step.get("requests_per_event") or {}
    return f"{requests['total']:.2f}" if requests else ""


def _profile_section(profiles: dict[str, Any]) -> list[str]:
    lines = [f"Where the time goes: py-spy at {number(profiles['rate'])} events/s for "
             f"{number(profiles['seconds'])} s (load 1 min {load(profiles)}); share of the "
             "samples taken while the service ran Python (held the GIL), per function: self "
             "time (innermost frame) and, for the project's own functions, total time "
             "(anywhere on the stack):", ""]
    for service in ("features", "model"):
        profile = profiles.get(service)
        if not profile:
            continue
        if profile.get("error"):
            lines += [f"**{service}**: {profile['error']}", ""]
            continue
        lines += [f"**{service}** ({profile['samples']:,} samples at 100 Hz; "
                  f"`{profile['file']}`)", "",
                  _row("self", "%", "total (project code)", "%"), "|---|---|---|---|"]
        own, anywhere = profile["self"], profile["total"]
        for index in range(max(len(own), len(anywhere))):
            left = own[index] if index < len(own) else None
            right = anywhere[index] if index < len(anywhere) else None
            lines.append(_row(
                f"`{left['frame']}`" if left else "", percent(left["share"]) if left else "",
                f"`{right['frame']}`" if right else "",
                percent(right["share"]) if right else ""))
        lines.append("")
    return lines


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> tuple[Path, Path]:
    """``results-<stamp>.json`` and ``.md`` under ``out_dir``, copied to ``latest.*``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    markdown = render(results)
    json_path, md_path = out_dir / f"results-{stamp}.json", out_dir / f"results-{stamp}.md"
    for path, content in ((json_path, document), (out_dir / "latest.json", document)):
        path.write_bytes(content)
    for path in (md_path, out_dir / "latest.md"):
        path.write_text(markdown)
    return json_path, md_path
