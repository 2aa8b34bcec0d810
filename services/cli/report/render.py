"""Draw the report's charts as PNG files with matplotlib.

matplotlib is an optional dependency (``pip install 'streamml[report]'``): it is imported only
when charts are drawn, and figures are drawn on the Agg canvas directly, without pyplot, so no
window, display or global backend is involved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.report.aggregate import RunSummary
from services.cli.report.records import ReportError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MARKER_STYLES: dict[str, tuple[str, str]] = {
    "concept": ("#d62728", "--"),
    "covariate": ("#ff7f0e", ":"),
    "label": ("#9467bd", "--"),
    "prediction": ("#8c564b", ":"),
    "promoted": ("#2ca02c", "-"),
    "champion_reset": ("#111111", "-"),
    "challenger_started": ("#17becf", "-."),
}
"""Colour and line style of a vertical marker, by drift kind or model-event kind."""

PHASE_COLOURS: dict[str, str] = {
    "covariate_shift": "#ffbb78", "label_shift": "#c5b0d5", "concept_drift": "#ff9896",
}


@dataclass(frozen=True)
class Chart:
    """A PNG the report shows: its file name inside the report folder, a title and a caption."""

    file: str
    title: str
    caption: str


def require_matplotlib() -> None:
    """Raise :class:`ReportError` with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ReportError("charts need matplotlib, which is not installed: "
                          "pip install 'streamml[report]'") from error


def time_axis(span_seconds: float) -> tuple[float, str]:
    """Divisor and unit for an axis of ``span_seconds``: seconds, minutes, hours or days."""
    if span_seconds <= 600:
        return 1.0, "s"
    if span_seconds <= 3 * 3600:
        return 60.0, "min"
    if span_seconds <= 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "d"


def x_axis(summary: RunSummary) -> tuple[float, str]:
    """Divisor and label of the charts' x axis: event time in a readable unit, or events."""
    if summary.axis == "position":
        return 1.0, "stream position (events since the first)"
    divisor, unit = time_axis(summary.axis_span)
    return divisor, f"event time since the first event ({unit})"


def bucket_words(summary: RunSummary) -> str:
    """The buckets of the x axis, for a caption: ``10 s event-time buckets``."""
    if summary.axis == "position":
        return (f"buckets of {summary.bucket:g} events in stream order (the run's event times "
                f"span {summary.span_seconds:.3g} s)")
    return f"{summary.bucket:g} s event-time buckets"


def render_charts(summary: RunSummary, folder: Path) -> list[Chart]:
    """Draw every chart the summary has data for into ``folder``; return them in page order."""
    require_matplotlib()
    folder.mkdir(parents=True, exist_ok=True)
    charts: list[Chart] = []
    if summary.accuracy:
        charts.append(_save(folder, "accuracy.png", (11, 4.8), _draw_accuracy, summary,
                            "Accuracy over time",
                            f"Share of judged outcomes that were right, per model, in "
                            f"{bucket_words(summary)}. Vertical lines: drift alerts at the "
                            "event they fired on (dashed or dotted, by kind), and model events "
                            "at the latest event learned when they happened. Dashed grey: "
                            "the accuracy the metrics sink estimated for the champion's "
                            "predictions when they were made, before their labels came (from "
                            "their confidence; blind to concept drift)."))
    if summary.latency:
        charts.append(_save(folder, "latency.png", (11, 6.0), _draw_latency, summary,
                            "Latency over time",
                            "p50, p95 and p99 of the champion's predictions per bucket of "
                            "the x axis: from the event's time, and from the feature vector's "
                            "arrival (in seconds when they reach 10 s)."))
    if summary.label_delays.labelled.count or summary.label_delays.timed_out:
        charts.append(_save(folder, "label_delay.png", (11, 4.0), _draw_label_delay, summary,
                            "Label delay",
                            "How long after its event each label came (one per event); labels "
                            "that never came within the feedback window are counted apart."))
    return charts


def _save(folder: Path, name: str, size: tuple[float, float],
          draw: Callable[[Figure, RunSummary], None], summary: RunSummary, title: str,
          caption: str) -> Chart:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure, summary)
    figure.savefig(folder / name, format="png")
    return Chart(name, title, caption)


def _draw_accuracy(figure: Figure, summary: RunSummary) -> None:
    divisor, label = x_axis(summary)
    axes = figure.add_subplot()
    for band in summary.phases:
        axes.axvspan(band.start / divisor, band.end / divisor, alpha=0.25, linewidth=0,
                     color=PHASE_COLOURS.get(band.kind, "#dddddd"),
                     label=f"truth: {band.kind.replace('_', ' ')}")
        axes.axvline(band.start / divisor, color="#999999", linewidth=0.6)
        axes.text(band.start / divisor, 1.0, f" {band.name}", fontsize=8, color="#555555",
                  va="top", clip_on=True)
    half = summary.bucket / 2
    for model, points in summary.accuracy.items():
        axes.plot([(point.start + half) / divisor for point in points],
                  [point.accuracy for point in points], marker=".", linewidth=1.6, label=model)
    if summary.estimated:
        axes.plot([(start + half) / divisor for start, _ in summary.estimated],
                  [value for _, value in summary.estimated], linestyle="--", linewidth=1.2,
                  color="#444444", label="champion, estimated before its labels came")
    for marker in summary.markers:
        if marker.at is None:
            continue
        colour, style = MARKER_STYLES.get(marker.category, ("#7f7f7f", "-"))
        axes.axvline(marker.at / divisor, color=colour, linestyle=style, linewidth=1.1,
                     alpha=0.8, label=marker.category.replace("_", " "))
    axes.set_ylim(0.0, 1.02)
    axes.set_xlim(0.0, max(summary.axis_span, summary.bucket) / divisor)
    axes.set_xlabel(label)
    axes.set_ylabel("accuracy")
    axes.grid(alpha=0.3)
    _legend_once(axes, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _draw_latency(figure: Figure, summary: RunSummary) -> None:
    divisor, label = x_axis(summary)
    half = summary.bucket / 2
    top, bottom = figure.subplots(2, 1, sharex=True)
    for axes, attribute, title in ((top, "event_to_prediction", "event -> prediction"),
                                   (bottom, "features_to_prediction", "features -> prediction")):
        xs = [(point.start + half) / divisor for point in summary.latency]
        series = {quantile: [_seconds(getattr(getattr(point, attribute), quantile))
                             for point in summary.latency] for quantile in ("p50", "p95", "p99")}
        highest = max((y for ys in series.values() for y in ys if y == y), default=0.0)
        scale, scale_unit = (1.0, "s") if highest >= 10.0 else (1000.0, "ms")
        for (quantile, ys), style in zip(series.items(), ("-", "--", ":"), strict=True):
            axes.plot(xs, [y * scale for y in ys], linestyle=style, marker=".", label=quantile)
        axes.set_title(title, fontsize=10)
        axes.set_ylabel(scale_unit)
        axes.set_ylim(0.0, highest * scale * 1.25 or 1.0)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper right", fontsize=8, ncol=3)
    bottom.set_xlim(0.0, max(summary.axis_span, summary.bucket) / divisor)
    bottom.set_xlabel(label)


def _draw_label_delay(figure: Figure, summary: RunSummary) -> None:
    delays = summary.label_delays
    axes = figure.add_subplot()
    edges = delays.histogram.edges
    widths = [high - low for low, high in pairwise(edges)]
    axes.bar(edges[:-1], delays.histogram.counts, width=widths, align="edge", color="#1f77b4",
             edgecolor="white")
    axes.set_xlabel("label delay (s)")
    axes.set_ylabel("labels")
    axes.set_title(f"{delays.labelled.count} labels came, {delays.timed_out} timed out",
                   fontsize=10)
    axes.grid(alpha=0.3, axis="y")


def _legend_once(axes: Axes, **options: Any) -> None:
    """A legend with one entry per label, however many lines share it."""
    handles, labels = axes.get_legend_handles_labels()
    unique: dict[str, Any] = {}
    for handle, label in zip(handles, labels, strict=True):
        unique.setdefault(label, handle)
    axes.legend(list(unique.values()), list(unique), fontsize=8, framealpha=0.9, **options)


def _seconds(value: float | None) -> float:
    """A percentile in seconds for plotting; NaN (a gap in the line) when there is none."""
    return float("nan") if value is None else value
