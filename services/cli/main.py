"""The ``streamml`` command: one entry point for the local broker, topics and the pipeline.

Run ``streamml --help`` for the commands. Settings come from ``STREAMML_*`` variables (see
``services/common/settings.py``); flags override them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.spec import SpecError, builtin_specs, load_spec, resolve_spec_path
from services.cli import prometheus, stack
from services.cli.backtest import add_parser as add_backtest_parser
from services.cli.bench.command import add_bench_arguments, run_bench
from services.cli.bench.tools import TOOLS, tool_main
from services.cli.evaluate_anomaly import add_parser as add_evaluate_anomaly_parser
from services.cli.evaluate_drift import add_parser as add_evaluate_drift_parser
from services.cli.evaluate_estimate import add_parser as add_evaluate_estimate_parser
from services.cli.evaluate_segments import add_parser as add_evaluate_segments_parser
from services.cli.local_kafka import BrokerError, BrokerPaths, LocalBroker
from services.cli.local_kafka.command import add_kafka_arguments, run_kafka_command
from services.cli.local_kafka.fetch import FetchError
from services.cli.report.command import add_report_arguments, run_report
from services.cli.topics import add_topics_arguments, create_topics, run_topics_command
from services.common.kafka import BrokerUnavailable
from services.common.settings import Settings


def home_dir() -> Path:
    """Where streamml keeps local state: ``$STREAMML_HOME`` or ``./.streamml``."""
    return Path(os.environ.get("STREAMML_HOME", ".streamml"))


def local_broker(port: int) -> LocalBroker:
    """The project's local broker, its files under the home folder, its jars under ``.cache``."""
    cache = Path(os.environ.get("STREAMML_CACHE", ".cache"))
    return LocalBroker(BrokerPaths(home_dir() / "kafka"), cache, port=port,
                       controller_port=port + 1)


def _print(document: Any) -> None:
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def cmd_kafka(args: argparse.Namespace) -> int:
    return run_kafka_command(args, local_broker(args.port))


def cmd_topics(args: argparse.Namespace) -> int:
    return run_topics_command(args)


def cmd_specs(args: argparse.Namespace) -> int:
    for name in builtin_specs():
        spec = load_spec(name)
        print(f"{name}\t{resolve_spec_path(name)}\t{spec.description}")
    return 0


def _replicas(text: str) -> int:
    """``--predictors``: a whole number from 0 to 64."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= 64:
        raise argparse.ArgumentTypeError(f"expected 0 to 64 replicas, got {text!r}")
    return count


def _stack_env(args: argparse.Namespace) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.startswith("STREAMML_")}
    if getattr(args, "spec", None):
        spec = load_spec(args.spec)  # fail now, with the spec's own message, not in four logs
        env["STREAMML_SPEC"] = str(args.spec)
        from services.producer.scenarios import SCENARIOS

        if spec.name in SCENARIOS:  # a built-in scenario's spec: its producer streams that
            env.setdefault("STREAMML_PRODUCER__SCENARIO", spec.name)
    if getattr(args, "rate", None):
        env["STREAMML_PRODUCER__RATE"] = str(args.rate)
    return env


def cmd_up(args: argparse.Namespace) -> int:
    create_topics(Settings())
    monitoring = _monitoring(args)
    plan = stack.plan_stack(home_dir(), _stack_env(args), with_producer=not args.no_producer,
                            port_offset=args.port_offset, monitoring=monitoring,
                            predictors=args.predictors)
    if monitoring is not None and stack.read_state(home_dir()) is None:
        prometheus.write_config(home_dir(), plan.services, prometheus.PORT + args.port_offset,
                                monitoring)
    report = stack.up(plan)
    _print_status(report)
    print(f"logs: {home_dir() / 'logs'}   stop with: streamml down")
    return 0


def _monitoring(args: argparse.Namespace) -> prometheus.PrometheusOptions | None:
    """Prometheus for ``up``, or None (with the reason printed) when it will not run."""
    if args.no_prometheus:
        return None
    binary = prometheus.find_binary()
    if binary is None:
        print("prometheus is not installed, so it will not run (Debian: apt-get install "
              "prometheus; --no-prometheus hides this note)")
        return None
    port = prometheus.PORT + args.port_offset
    if stack.read_state(home_dir()) is None and not stack.port_is_free(port):
        print(f"port {port} is taken (another Prometheus?), so ours will not run; use "
              "--port-offset to move every port, or --no-prometheus")
        return None
    return prometheus.PrometheusOptions(
        binary, prometheus.interval_from_seconds(args.scrape_interval))


def cmd_down(args: argparse.Namespace) -> int:
    print("stopped" if stack.down(home_dir()) else "not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    report = stack.status(home_dir())
    if args.json:
        _print(report)
    else:
        _print_status(report)
    return 0 if report["running"] else 1


def _print_status(report: dict[str, Any]) -> None:
    if not report["running"]:
        print("not running")
        return
    print(f"{'service':<14}{'pid':>8}  {'healthy':<8}{'restarts':>9}  url")
    for name, service in report["services"].items():
        print(f"{name:<14}{service['pid']:>8}  {service['healthy']!s:<8}{service['restarts']:>9}"
              f"  {service['url']}")


def cmd_produce(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from services.common.runtime import StopSignal
    from services.producer.scenarios.labels import parse_label_delay
    from services.producer.service import build_scenario, run
    from services.producer.settings import ProducerOptions, ProducerSettings

    truth = args.truth
    if truth is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        truth = home_dir() / "runs" / f"{stamp}-{args.scenario}" / "truth.json"
    delay = {"label_delay": parse_label_delay(args.label_delay)} if args.label_delay else {}
    options = ProducerOptions(
        scenario=args.scenario, rate=args.rate, duration_seconds=args.duration,
        max_events=args.max_events, seed=args.seed, explicit_negatives=args.explicit_negatives,
        timeline=args.timeline, truth_path=truth, late_share=args.late_share,
        lost_share=args.lost_share, **delay,
    )
    build_scenario(options)  # a bad timeline fails here, before anything is connected or sent
    settings = ProducerSettings(producer=options, metrics_port=0)
    print(f"ground truth: {truth}", flush=True)
    summary = run(settings, StopSignal().install())
    print(f"published {summary.events} events and {summary.labels} labels "
          f"in {summary.seconds:.1f}s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from services.cli.demo import run_demo

    return run_demo(local_broker(args.port), home_dir(), args.duration, args.rate)


def cmd_replay(args: argparse.Namespace) -> int:
    from services.common.runtime import StopSignal
    from services.producer.progress import Progress
    from services.producer.replay_stream import ReplayOptions, replay_file

    spec = load_spec(args.spec)
    options = ReplayOptions(
        label_delay_events=args.label_delay, label_delay_seconds=args.label_delay_seconds,
        rate=args.rate, limit=args.limit, skip_bad=args.skip_bad,
        speed=None if args.speed == math.inf else args.speed,
    )
    progress = Progress.on_terminal(sys.stderr, quiet=args.quiet)
    summary = replay_file(args.file, spec, options, Settings(), StopSignal().install(), progress)
    print(summary.describe(args.file))
    return 1 if summary.stopped else 0


def parse_speed(text: str) -> float:
    """``--speed``: a positive factor, or ``max`` (infinity: no pacing)."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'max', got {text!r}")
    return speed


def cmd_report(args: argparse.Namespace) -> int:
    return run_report(args, home_dir())


def cmd_bench(args: argparse.Namespace) -> int:
    return run_bench(args, home_dir())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamml", description="Real-time machine learning on Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    kafka = commands.add_parser("kafka", help="the local Kafka broker (fetched from Maven Central)")
    add_kafka_arguments(kafka)
    kafka.set_defaults(func=cmd_kafka)

    topics = commands.add_parser("topics", help="create or list the pipeline's topics")
    add_topics_arguments(topics)
    topics.set_defaults(func=cmd_topics)

    specs = commands.add_parser("specs", help="list the built-in pipeline specs")
    specs.set_defaults(func=cmd_specs)

    up = commands.add_parser("up", help="start the services as supervised processes")
    up.add_argument("--spec", help="built-in spec name or TOML file (default: clicks)")
    up.add_argument("--rate", type=float, help="producer events per second")
    up.add_argument("--no-producer", action="store_true",
                    help="run only the consumers; publish your own events")
    up.add_argument("--port-offset", type=int, default=0,
                    help="add this to every metrics port (9101-9105) and Prometheus' (9090), "
                         "to run two stacks")
    up.add_argument("--predictors", type=_replicas, default=0, metavar="N",
                    help="the scaled layout: N predictor replicas serve and the model service "
                         "only learns (default 0: one model process does both)")
    up.add_argument("--no-prometheus", action="store_true",
                    help="do not run Prometheus (by default it runs when installed)")
    up.add_argument("--scrape-interval", type=float, default=5.0, metavar="SECONDS",
                    help="how often Prometheus scrapes and evaluates its rules (default 5)")
    up.set_defaults(func=cmd_up)

    down = commands.add_parser("down", help="stop the services")
    down.set_defaults(func=cmd_down)

    status = commands.add_parser("status", help="which services run and are healthy")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    produce = commands.add_parser("produce", help="stream a built-in scenario onto the bus")
    produce.add_argument("--scenario", default="clicks")
    produce.add_argument("--rate", type=float, default=50.0)
    produce.add_argument("--duration", type=float, default=None, help="seconds")
    produce.add_argument("--max-events", type=int, default=None)
    produce.add_argument("--seed", type=int, default=7)
    produce.add_argument("--explicit-negatives", action="store_true",
                         help="also send non-clicks as labels (default: silence means no click)")
    produce.add_argument("--timeline", default=None, metavar="NAME|FILE",
                         help="drift phases: a built-in timeline (clicks-drift) or a TOML file "
                              "(default: stationary)")
    produce.add_argument("--truth", type=Path, default=None, metavar="FILE",
                         help="where to write the run's ground-truth drift points (default: "
                              ".streamml/runs/<UTC time>-<scenario>/truth.json)")
    produce.add_argument("--label-delay", default=None, metavar="DIST",
                         help="feedback delay: uniform:LOW:HIGH (default uniform:0.2:3), "
                              "exponential:MEAN or lognormal:MEDIAN:SIGMA, in seconds")
    produce.add_argument("--late-share", type=float, default=0.0,
                         help="share of labels that arrive after the feedback window")
    produce.add_argument("--lost-share", type=float, default=0.0,
                         help="share of labels that never arrive")
    produce.set_defaults(func=cmd_produce)

    demo = commands.add_parser(
        "demo", help="broker + services + the clicks scenario with a concept drift, 2.5 min")
    demo.add_argument("--duration", type=float, default=150.0,
                      help="seconds of streaming (default 150: five feedback windows)")
    demo.add_argument("--rate", type=float, default=200.0, help="events/s (default 200)")
    demo.add_argument("--port", type=int, default=9092)
    demo.set_defaults(func=cmd_demo)

    replay = commands.add_parser(
        "replay", help="publish a CSV or JSONL file as events and labels",
        description="Publish each row of FILE as an event and its label column as the label, "
                    "as the spec's [source] section says. An event's time is the moment it is "
                    "published or, when [source] names a time_column, the row's own time. "
                    "Exits 1 when stopped by a signal.",
    )
    replay.add_argument("file", type=Path, help="a .csv (with a header) or .jsonl/.ndjson file")
    replay.add_argument("--spec", required=True, help="built-in spec name or TOML file")
    delay = replay.add_mutually_exclusive_group()
    delay.add_argument("--label-delay", type=int, metavar="N",
                       help="publish each label right after the N-th next event (default 0)")
    delay.add_argument("--label-delay-seconds", type=float, metavar="S",
                       help="publish each label S seconds after its event (in data time when "
                            "the spec's [source] has a time_column)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="R",
                      help="events per second (default: as fast as possible)")
    pace.add_argument("--speed", type=parse_speed, metavar="N|max",
                      help="with a time_column: replay at N times the data's pace (1: its own "
                           "pace), or 'max' as fast as possible (the default); events keep the "
                           "data's times either way")
    replay.add_argument("--limit", type=int, metavar="N", help="replay only the first N rows")
    replay.add_argument("--skip-bad", action="store_true",
                        help="skip and count rows that cannot be converted instead of stopping")
    replay.add_argument("--quiet", action="store_true", help="no progress line")
    replay.set_defaults(func=cmd_replay)

    report = commands.add_parser(
        "report", help="write an HTML report of a run (charts of accuracy, latency, labels)",
        description="Read the run's predictions, outcomes, drift alerts, model events and dead "
                    "letters to their current end and write DIR/index.html with PNG charts.",
    )
    add_report_arguments(report)
    report.set_defaults(func=cmd_report)

    bench = commands.add_parser(
        "bench", help="benchmark: River in process against the pipeline on the broker",
        description="Run the spec's champion on one stream in process and through the running "
                    "services (fresh topics): sustained rate, latency percentiles, memory, "
                    "profile. Writes JSON and Markdown under bench/ and prints the table.",
    )
    add_bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    add_evaluate_drift_parser(commands)
    add_evaluate_estimate_parser(commands)
    add_evaluate_anomaly_parser(commands)
    add_evaluate_segments_parser(commands)
    add_backtest_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print a message and exit 2, not a traceback."""
    given = sys.argv[1:] if argv is None else argv
    if len(given) > 1 and given[0] == "bench" and given[1] in TOOLS:
        # A tool parses what follows its name itself: its flags may share names with the
        # pipeline benchmark's (--spec, --rates), which argparse would take for those.
        return tool_main(given[1])(given[2:])
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    try:
        code: int = args.func(args)
    except (SpecError, BrokerError, FetchError, BrokerUnavailable, stack.StackError,
            ValidationError, ValueError) as error:
        print(f"streamml {args.command}: {error}", file=sys.stderr)
        return 2
    if os.environ.get("STREAMML_TIMING"):
        print(f"({time.monotonic() - started:.1f}s)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
