"""The anchors of the report: the peers and the pipeline's drain, and the ratios to them.

Pure: the results document (``results["peers"]``, ``results["drain"]``, the in-process and
sustained figures) in, ratios and Markdown table rows out. The rows have the report's four
columns (measure, value, target, load 1 min).

>>> ratio_text(2516 / 73886), ratio_text(None), ratio_text(1.5)
('0.0341 (1 / 29.4)', 'n/a', '1.5')
"""

from __future__ import annotations

import math
from typing import Any

from services.cli.bench.stats import ratio

PEER_NAMES = {
    "confluent-kafka": "plain confluent-kafka loop",
    "quixstreams": "quixstreams application",
}
"""How the report names each peer of :data:`services.cli.bench.peers.PEERS`."""
PEER_DETAILS = {
    "confluent-kafka": "consume(500), predict, learn, produce; at-least-once",
    "quixstreams": "StreamingDataFrame.apply, to_topic; exactly-once",
}
NOTE = ("Drain rates (peers and pipeline): the stream is on the broker before the consumer "
        "starts; events/s between the outputs that complete 10% and 90% of it, from the time "
        "each prediction was produced (start-up and the last stragglers left out). The peers "
        "read one message per event holding the feature dict the features service computes "
        "and the label inline, run the spec's champion built as the model service builds it "
        "(predict, then learn with the same label delay) and produce one prediction per "
        "event to a topic; quixstreams runs in a virtualenv of its own "
        "(`bench-peers-venv` in the streamml home folder, `.streamml/` by default).")


def ratio_text(value: float | None) -> str:
    """A ratio to three significant digits; below 1, also as one over a number."""
    if value is None or math.isnan(value):
        return "n/a"
    text = f"{value:.3g}"
    return f"{text} (1 / {1 / value:.1f})" if 0 < value < 1 else text


def _rate(entry: dict[str, Any] | None) -> float | None:
    if not entry or entry.get("error"):
        return None
    value = entry.get("events_per_second")
    return None if value is None or value != value else float(value)


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """The pipeline's drain and sustained rates over River in process and over each peer's
    drain: keys ``drain/river``, ``drain/<peer>``, ``sustained/<peer>``."""
    drain = _rate(results.get("drain"))
    sustained = results.get("pipeline", {}).get("search", {}).get("sustained_max")
    river = results.get("in_process", {}).get("river", {}).get("events_per_second")
    found: dict[str, float | None] = {"drain/river": ratio(drain, river)}
    for peer, entry in (results.get("peers") or {}).items():
        found[f"drain/{peer}"] = ratio(drain, _rate(entry))
        found[f"sustained/{peer}"] = ratio(sustained, _rate(entry))
    return found


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _number(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:,.0f}"


def _percent(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}%"


def _load(entry: dict[str, Any]) -> str:
    before, after = entry.get("load_before"), entry.get("load_after")
    return f"{before[0]:.2f} → {after[0]:.2f}" if before and after else ""


def _versions(entry: dict[str, Any]) -> str:
    versions = (entry.get("report") or {}).get("versions") or {}
    return ", ".join(f"{name} {value}" for name, value in versions.items() if name != "river")


def peer_rows(results: dict[str, Any]) -> list[str]:
    """Two rows per peer (drain rate, accuracy), or one saying why it was not measured."""
    peers = results.get("peers")
    if peers is None:
        reason = results.get("peers_skipped")
        return [_row("peers (plain confluent-kafka loop, quixstreams)",
                     f"not measured ({reason})", "", "")] if reason else []
    rows = []
    for peer, entry in peers.items():
        name = PEER_NAMES.get(peer, peer)
        if entry.get("error") and not entry.get("outputs"):
            rows.append(_row(f"peer: {name}: drain, events/s",
                             f"not measured: {entry['error']}", "", ""))
            continue
        versions = _versions(entry)
        detail = PEER_DETAILS.get(peer, "") + (f"; {versions}" if versions else "")
        flag = f" ({entry['error']}; {entry.get('missing', 0):,} missing)" if entry.get(
            "error") else ""
        rows += [
            _row(f"peer: {name} ({detail}), drain of {entry['events']:,} events: events/s",
                 _number(entry.get("events_per_second")) + flag, "", _load(entry)),
            _row(f"peer: {name}: accuracy of the champion", _percent(entry.get("accuracy")),
                 "", ""),
        ]
    return rows


SERVICE_ORDER = ("features", "model", "drift", "metrics-sink")


def drain_rows(results: dict[str, Any]) -> list[str]:
    """The pipeline's drain and its ratios to River and to each peer."""
    drain = results.get("drain")
    if not drain:
        return []
    if drain.get("error"):
        return [_row("pipeline: drain, events/s", f"not measured: {drain['error']}", "", "")]
    found = ratios(results)
    missing = drain.get("missing") or 0
    rows = [
        _row(f"pipeline: drain of {drain['events']:,} events loaded before the services "
             "started, events/s", _number(drain.get("events_per_second"))
             + (f" ({missing:,} predictions missing)" if missing else ""), "", _load(drain)),
        _row("pipeline drain: accuracy of the champion", _percent(drain.get("accuracy")), "",
             ""),
        _row("pipeline drain / River in process", ratio_text(found.get("drain/river")), "", ""),
    ]
    cpu = drain.get("cpu_ms_per_event") or {}
    if cpu:
        names = [name for name in (*SERVICE_ORDER, "broker") if name in cpu]
        rows.append(_row(
            f"pipeline drain: CPU per event, ms ({' / '.join(names)}; sum)",
            " / ".join(f"{cpu[name]:.3f}" for name in names)
            + f"; {sum(cpu[name] for name in names):.3f}", "", ""))
    requests = drain.get("requests_per_event") or {}
    if requests:
        rows.append(_row(
            "pipeline drain: Kafka requests per event (all / produce / fetch), whole drain",
            f"{requests['total']:.3f} / {requests['produce']:.3f} / {requests['fetch']:.3f}",
            "", ""))
    for peer in results.get("peers") or {}:
        rows.append(_row(f"pipeline drain / {PEER_NAMES.get(peer, peer)}",
                         ratio_text(found.get(f"drain/{peer}")), "", ""))
    return rows


def sustained_rows(results: dict[str, Any]) -> list[str]:
    """The sustained rate over each peer's drain rate (when both were measured)."""
    if results.get("pipeline", {}).get("search", {}).get("sustained_max") is None:
        return []
    found = ratios(results)
    return [_row(f"pipeline sustained / {PEER_NAMES.get(peer, peer)} (drain)",
                 ratio_text(found.get(f"sustained/{peer}")), "", "")
            for peer in results.get("peers") or {}]
