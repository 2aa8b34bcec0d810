"""``streamml evaluate-segments``: one model per segment against one global model, and what
1,000 segments cost in memory.

Runs the click scenario (stationary, seeded) through the features and model logic of the
``clicks`` spec in this process twice: as it is (one global model) and with ``[models]
segment_by`` set (one copy of every model per value). For each value, the accuracy of the
champion's predictions on that segment's events, both ways, on the same events. Then builds the
spec's models for ``--memory-segments`` segments (each having learned ``--memory-labels``
labels) and reports the memory they take (``tracemalloc``) and their pickled size (what a
checkpoint carries).
"""

from __future__ import annotations

import argparse
import pickle
import random
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Message

from schemas.codec import decode
from schemas.events import Event
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec, load_spec
from services.model.learner import Learner


def add_parser(commands: Any) -> None:
    """Declare the ``evaluate-segments`` subcommand on ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "evaluate-segments", help="one model per segment against one global model (in process)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", default="clicks")
    parser.add_argument("--segment-by", default="device",
                        help="entity key or categorical field (default device)")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--memory-segments", type=int, default=1000)
    parser.add_argument("--memory-labels", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    parser.set_defaults(func=cmd_evaluate_segments)


def segmented(spec: PipelineSpec, segment_by: str, max_segments: int = 1000) -> PipelineSpec:
    """``spec`` with one copy of its models per value of ``segment_by``."""
    document = spec.model_dump(exclude_unset=True)
    document["models"].update(segment_by=segment_by, max_segments=max_segments)
    return PipelineSpec.model_validate(document)  # checks segment_by names a key or category


@dataclass
class _Champion:
    """The champion's verdict per event, and each event's segment value."""

    segment_by: str
    value_of: dict[str, str] = field(default_factory=dict)
    correct: dict[str, bool] = field(default_factory=dict)

    def handle(self, message: Message) -> None:
        if message.topic() == "events":
            event = decode(Event, message.value())
            value = event.entity.get(self.segment_by, event.fields.get(self.segment_by))
            self.value_of[event.event_id] = str(value)
            return
        outcome = decode(Outcome, message.value())
        if outcome.role == "champion" and outcome.correct is not None:
            self.correct.setdefault(outcome.event_id, outcome.correct)


def accuracy_by_segment(global_run: _Champion, segment_run: _Champion) -> list[dict[str, Any]]:
    """Per segment value: events judged in both runs, and each run's champion accuracy."""
    tallies: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for event_id, right in global_run.correct.items():
        other = segment_run.correct.get(event_id)
        if other is None:
            continue
        tally = tallies[global_run.value_of.get(event_id, "none")]
        tally[0] += 1
        tally[1] += right
        tally[2] += other
    rows = [{"segment": value, "events": n, "global": round(g / n, 4),
             "per_segment": round(s / n, 4)} for value, (n, g, s) in sorted(tallies.items())]
    n, g, s = (sum(t[i] for t in tallies.values()) for i in range(3))
    if n:
        rows.append({"segment": "all", "events": n, "global": round(g / n, 4),
                     "per_segment": round(s / n, 4)})
    return rows


def segment_memory(spec: PipelineSpec, segments: int, labels: int) -> dict[str, Any]:
    """Memory and pickled size of ``segments`` segments' models, each taught ``labels`` labels."""
    rng = random.Random(1)  # noqa: S311 - synthetic inputs
    names = [f"{field}={value}" for field, spec_field in spec.fields.items()
             if spec_field.type == "categorical" for value in spec_field.values or ()]
    numbers = [field for field, spec_field in spec.fields.items()
               if spec_field.type != "categorical"]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    learner = Learner(spec.models, spec.label)
    for segment in range(segments):
        for _ in range(labels):
            x = {name: float(rng.random() < 0.3) for name in names}
            x.update({name: rng.random() for name in numbers})
            learner.predict(x, f"s{segment}")
            learner.learn(x, rng.random() < 0.3, f"s{segment}")
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    size = len(pickle.dumps(learner.segments, protocol=pickle.HIGHEST_PROTOCOL))
    return {"segments": segments, "labels_each": labels,
            "models_each": len(learner.models), "memory_bytes": used,
            "memory_bytes_per_segment": used // max(segments, 1), "pickled_bytes": size,
            "pickled_bytes_per_segment": size // max(segments, 1)}


def cmd_evaluate_segments(args: argparse.Namespace) -> int:
    """Both runs, the table, the memory line (and the JSON)."""
    from services.cli.evaluate_drift import DEFAULT_START
    from services.cli.pipeline_in_process import run_in_process
    from services.producer.service import build_scenario
    from services.producer.settings import ProducerOptions

    spec = load_spec(args.spec)
    split = segmented(spec, args.segment_by)
    runs = []
    for each in (spec, split):
        scenario = build_scenario(ProducerOptions(scenario=spec.name, seed=args.seed))
        champion = _Champion(args.segment_by)
        run_in_process(each, scenario, args.events, args.rate, DEFAULT_START,
                       observers=[("events", champion), ("outcomes", champion)])
        runs.append(champion)
    rows = accuracy_by_segment(runs[0], runs[1])
    memory = segment_memory(segmented(spec, args.segment_by, args.memory_segments),
                            args.memory_segments, args.memory_labels)
    print(f"spec {spec.name}, {args.events:,} events at {args.rate:g}/s, seed {args.seed}, "
          f"segment_by = {args.segment_by}")
    print(render(rows))
    print(f"\n{memory['segments']:,} segments x {memory['models_each']} models, "
          f"{memory['labels_each']} labels each: {memory['memory_bytes'] / 2**20:.1f} MiB "
          f"({memory['memory_bytes_per_segment']:,} bytes per segment), pickled "
          f"{memory['pickled_bytes'] / 2**20:.1f} MiB "
          f"({memory['pickled_bytes_per_segment']:,} bytes per segment)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({
            "spec": spec.name, "segment_by": args.segment_by, "events": args.events,
            "seed": args.seed, "rate": args.rate, "segments": rows, "memory": memory,
        }, option=orjson.OPT_INDENT_2))
        print(f"saved {args.json}")
    return 0


def render(rows: list[dict[str, Any]]) -> str:
    """The per-segment table, Markdown."""
    lines = ["| segment | events | one global model | one model per segment |",
             "|---|---|---|---|"]
    lines += [f"| {r['segment']} | {r['events']:,} | {r['global']:.4f} | {r['per_segment']:.4f} |"
              for r in rows]
    return "\n".join(lines)
