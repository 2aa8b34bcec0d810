"""The report's ``index.html``: one self-contained page (inline style and script, charts as PNG
files next to it, no external URL), so the folder opens offline and can be archived whole.

A small inline script checks the page after it loads: every chart image decoded, and no script
error, ``console.error`` or failed resource load happened. It writes the verdict to
``<body data-render>`` (``ok`` or ``failed``) and to the page's footer, so a headless browser
can tell a page that rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from services.cli.report.aggregate import RunSummary
from services.cli.report.render import Chart
from services.cli.report.stats import Percentiles

MAX_ROWS = 500
"""Longest table shown in full; longer ones show their first rows and say how many were left."""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1160px;
       color: #1d1d1f; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; }
.meta { color: #555; } table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left;
         white-space: nowrap; }
section { overflow-x: auto; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; } .empty { color: #777; font-style: italic; }
footer { margin-top: 40px; color: #777; font-size: 12px; }
"""

CHECK_SCRIPT = """
(function () {
  var problems = [];
  var consoleError = console.error;
  console.error = function () {
    problems.push("console error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("error", function (event) {
    var target = event.target;
    problems.push(target && target !== window && target.tagName
      ? "could not load " + (target.src || target.href || target.tagName)
      : "script error: " + event.message);
  }, true);
  window.addEventListener("load", function () {
    var images = document.images;
    for (var i = 0; i < images.length; i++) {
      if (!images[i].complete || images[i].naturalWidth === 0) {
        problems.push("chart not shown: " + images[i].getAttribute("src"));
      }
    }
    var ok = problems.length === 0;
    document.body.setAttribute("data-render", ok ? "ok" : "failed");
    document.body.setAttribute("data-charts", String(images.length));
    document.getElementById("render-status").textContent = ok
      ? "Page check: all " + images.length + " charts shown, no errors."
      : "Page check failed: " + problems.join("; ");
  });
})();
"""


@dataclass(frozen=True)
class PageContext:
    """What the page says about how it was made: the topic prefix, when, and the filters."""

    prefix: str
    generated_at: datetime
    since: datetime | None = None
    truth: str | None = None


def render_page(summary: RunSummary, charts: Sequence[Chart], context: PageContext) -> str:
    """The HTML of the report for ``summary``, showing ``charts`` (files next to the page)."""
    by_file = {chart.file: chart for chart in charts}
    sections = [
        _header(summary, context),
        _section("Models", _models(summary)),
        _figure(by_file.get("accuracy.png")),
        _section("Latency", _latency(summary) + _figure(by_file.get("latency.png"))),
        _section("Label delay", _label_delay(summary) + _figure(by_file.get("label_delay.png"))),
        _section("Drift alerts", _alerts(summary)),
        _section("Model events", _model_events(summary)),
        _section("Dead letters", _dead_letters(summary)),
    ]
    if summary.phases:
        sections.append(_section("Ground truth drift phases", _table(
            ["phase", "kind", "from (s)", "to (s)"],
            [[band.name, band.kind, _num(band.start, 1), _num(band.end, 1)]
             for band in summary.phases], numeric={2, 3})))
    title = f"streamml report: {context.prefix or 'default topics'}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n"
        f"<script>{CHECK_SCRIPT}</script>\n</head>\n<body data-render=\"pending\">\n"
        + "\n".join(sections)
        + "\n<footer><p id=\"render-status\">Page check has not run.</p></footer>\n"
        "</body>\n</html>\n"
    )


def _header(summary: RunSummary, context: PageContext) -> str:
    lines = [f"topic prefix <code>{escape(context.prefix) or '(none)'}</code>",
             f"generated {_time(context.generated_at)}"]
    if context.since is not None:
        lines.append(f"messages since {_time(context.since)}")
    if context.truth:
        lines.append(f"ground truth <code>{escape(context.truth)}</code>")
    if summary.origin is not None:
        end = summary.origin + timedelta(seconds=summary.span_seconds)
        lines.append(f"events from {_time(summary.origin)} to {_time(end)} "
                     f"({summary.span_seconds:.0f} s of event time)")
        lines.append("charts over event time" if summary.axis == "event_time"
                     else "charts over stream position (events)")
    counts = (f"{summary.events} events predicted, {summary.predictions} predictions, "
              f"{summary.outcomes} outcomes, {len(summary.alerts)} drift alerts, "
              f"{len(summary.model_events)} model events, "
              f"{sum(count for _, _, count in summary.dead_letters)} dead letters")
    unreadable = "".join(
        f"<p class=\"meta\">{count} message(s) on <code>{escape(topic)}</code> did not decode "
        "and are left out.</p>" for topic, count in summary.unreadable.items())
    return (f"<h1>streamml run report</h1>\n<p class=\"meta\">{' &middot; '.join(lines)}</p>\n"
            f"<p>{counts}.</p>{unreadable}")


def _models(summary: RunSummary) -> str:
    return _table(
        ["model", "outcomes", "judged", "correct", "accuracy", "versions"],
        [[m.model, str(m.outcomes), str(m.judged), str(m.correct), _pct(m.accuracy),
          ", ".join(str(v) for v in m.versions)] for m in summary.models],
        numeric={1, 2, 3, 4}, empty="No outcomes yet.")


def _latency(summary: RunSummary) -> str:
    def row(name: str, values: Percentiles) -> list[str]:
        return [name, str(values.count), _ms(values.p50), _ms(values.p95), _ms(values.p99)]

    return _table(["champion predictions", "count", "p50", "p95", "p99"],
                  [row("event -> prediction", summary.event_to_prediction),
                   row("features -> prediction", summary.features_to_prediction)],
                  numeric={1, 2, 3, 4})


def _label_delay(summary: RunSummary) -> str:
    delays = summary.label_delays
    return (f"<p>{delays.labelled.count} labels came (median {_sec(delays.labelled.p50)}, "
            f"p95 {_sec(delays.labelled.p95)}, p99 {_sec(delays.labelled.p99)}); "
            f"{delays.timed_out} events had no label within the feedback window.</p>")


def _alerts(summary: RunSummary) -> str:
    rows = [[_time(alert.event_time) if alert.event_time else "", alert.kind, alert.detector,
             alert.target, alert.model or "", _num(alert.statistic, 4), _num(alert.threshold, 4),
             str(alert.stream_position), _time(alert.detected_at)] for alert in summary.alerts]
    return _table(["event time", "kind", "detector", "target", "model", "statistic",
                   "threshold", "position", "detected at"], rows, numeric={5, 6, 7},
                  empty="No drift alerts.")


def _model_events(summary: RunSummary) -> str:
    rows = [[_time(event.at), event.kind, event.model, str(event.model_version),
             event.previous_model or "", event.reason,
             "" if event.statistic is None else _num(event.statistic, 3),
             str(event.labels_seen)] for event in summary.model_events]
    return _table(["at", "kind", "model", "version", "previous", "reason", "statistic",
                   "labels seen"], rows, numeric={3, 6, 7}, empty="No model events.")


def _dead_letters(summary: RunSummary) -> str:
    return _table(["source topic", "reason", "count"],
                  [[source, reason, str(count)] for source, reason, count in summary.dead_letters],
                  numeric={2}, empty="No dead letters.")


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _figure(chart: Chart | None) -> str:
    if chart is None:
        return ""
    return (f"<figure><img src=\"{escape(chart.file)}\" alt=\"{escape(chart.title)}\">"
            f"<figcaption><b>{escape(chart.title)}.</b> {escape(chart.caption)}</figcaption>"
            "</figure>")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Iterable[int] = (),
           empty: str = "Nothing to show.") -> str:
    if not rows:
        return f"<p class=\"empty\">{escape(empty)}</p>"
    right = set(numeric)

    def cells(tag: str, values: Sequence[str]) -> str:
        number = ' class="n"'
        return "".join(f"<{tag}{number if index in right else ''}>{escape(value)}</{tag}>"
                       for index, value in enumerate(values))

    body = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in rows[:MAX_ROWS])
    more = (f"<p class=\"meta\">... and {len(rows) - MAX_ROWS} more rows.</p>"
            if len(rows) > MAX_ROWS else "")
    return f"<table>\n<tr>{cells('th', headers)}</tr>\n{body}\n</table>{more}"


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds * 1000:.1f} ms"


def _sec(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"
