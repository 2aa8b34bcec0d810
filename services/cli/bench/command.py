"""``streamml bench``: the flags, and one run from River in process to the written report."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.bench.peer_venv import (
    QUIXSTREAMS_VERSION,
    PeerVenv,
    ensure_peer_venv,
    requirements,
)
from services.cli.bench.tools import TOOLS, describe

if TYPE_CHECKING:
    from schemas.spec import PipelineSpec
    from services.cli.bench.workload import Workload
    from services.common.settings import KafkaSettings

DEFAULT_LADDER = "250,500,1000,2000,4000,8000,16000"


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags, and the optional tool name whose own flags follow it."""
    parser.add_argument("tool", nargs="?", choices=sorted(TOOLS), metavar="TOOL",
                        help="run one part's benchmark or the parity check (below) instead of "
                             "the pipeline benchmark; the arguments after it are the tool's")
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "tools (streamml bench TOOL --help for their flags):\n" + describe()
    parser.add_argument("--spec", default="elec2",
                        help="built-in spec name or TOML file; its champion is the model under "
                             "test (default: elec2, a logistic regression)")
    parser.add_argument("--data", type=Path, default=None, metavar="FILE",
                        help="CSV or JSONL file to stream, as the spec's [source] says (default: "
                             "data/<spec>.csv; the click scenario for clicks)")
    parser.add_argument("--quick", action="store_true",
                        help="short windows and few rates: a smoke check in about two minutes")
    parser.add_argument("--label-delay", type=int, default=0, metavar="N",
                        help="publish each label right after the N-th next event (River delay "
                             "N + 1; default 0)")
    parser.add_argument("--events", type=int, default=None,
                        help="events for the in-process passes (default: the file once, or "
                             "50,000; 10,000 with --quick)")
    parser.add_argument("--rates", default=DEFAULT_LADDER, metavar="R1,R2,...",
                        help=f"rates to climb in the search for the sustained maximum "
                             f"(default {DEFAULT_LADDER}), refined by bisection")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help="length of each rate step (default 30; 8 with --quick)")
    parser.add_argument("--latency-seconds", type=float, default=None,
                        help="measured length of each latency run (default 30; 8 with --quick)")
    parser.add_argument("--profile-seconds", type=float, default=None,
                        help="py-spy recording length (default 20; 6 with --quick; 0: none)")
    parser.add_argument("--in-process-only", action="store_true",
                        help="only River in process: no broker, no services")
    parser.add_argument("--drain-only", action="store_true",
                        help="River in process, the peers and the pipeline's drain; no rate "
                             "search, latency runs or profile")
    parser.add_argument("--drain-events", type=int, default=None, metavar="N",
                        help="events the peers and the pipeline drain (default: as many as "
                             "the in-process passes)")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip the peers (plain confluent-kafka loop, quixstreams)")
    parser.add_argument("--quixstreams", default=QUIXSTREAMS_VERSION, metavar="VERSION",
                        help="quixstreams release installed in the peers' virtualenv "
                             "(<home>/bench-peers-venv; default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench"), metavar="DIR",
                        help="where results go (default: bench/)")
    parser.add_argument("--keep-topics", action="store_true",
                        help="do not delete the run's topics afterwards")


def run_bench(args: argparse.Namespace, home: Path) -> int:
    """Run the benchmark the parsed ``args`` ask for; print the Markdown report; return 0.
    ``home`` is where the local broker keeps its pid file (``<home>/kafka/broker.pid``).
    A tool named after the pipeline benchmark's flags is refused (``streamml bench TOOL ...``
    is dispatched before these flags are parsed: :func:`services.cli.main.main`)."""
    if args.tool is not None:
        misplaced = _flags_given(args)
        print(f"streamml bench {args.tool}: {', '.join(misplaced) or 'flags'} belong to the "
              f"pipeline benchmark; give the tool's own flags after its name", file=sys.stderr)
        return 2
    from schemas.spec import load_spec
    from services.cli.bench import anchors, inprocess, report
    from services.cli.bench.scrape import load_average
    from services.cli.bench.workload import FileWorkload, workload_for
    from services.common.settings import Settings

    spec = load_spec(args.spec)
    workload = workload_for(spec, args.data)
    river_delay = args.label_delay + 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "stamp": stamp,
        "command": "streamml bench " + " ".join(sys.argv[2:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "river_version": version("river"), "spec": spec.name, "stream": workload.description,
        "champion": spec.models.champion.name,
        "champion_estimator": inprocess.describe_model(spec.models.champion),
        "models": [spec.models.champion.name, *(m.name for m in spec.models.challengers)],
        "label_delay": args.label_delay, "river_delay": river_delay, "quick": args.quick,
        "load": {"start": load_average()},
    }
    events = args.events or (10_000 if args.quick else (
        workload.size if isinstance(workload, FileWorkload) else 50_000))
    _say(f"River in process: {events:,} events ...")
    prepared = inprocess.prepare(workload_for(spec, args.data), events, datetime.now(UTC),
                                 1000.0)
    results["in_process"] = {
        "river": inprocess.river_alone(spec, prepared, river_delay).as_dict(),
        "service_logic": inprocess.service_logic(spec, prepared, river_delay).as_dict(),
    }
    del prepared
    if not args.in_process_only:
        kafka = Settings().kafka
        results.update(_anchors(args, spec, workload, kafka, home, events, river_delay))
    if not args.in_process_only and not args.drain_only:
        results.update(_pipeline(args, args.spec, workload, kafka, home, stamp))
        best = results["pipeline"]["search"]["sustained_max"]
        results["ratio"] = {
            name: (None if best is None else best / results["in_process"][name][
                "events_per_second"]) for name in ("river", "service_logic")}
    if "drain" in results:
        results["anchor_ratios"] = anchors.ratios(results)
    results["load"]["end"] = load_average()
    json_path, md_path = report.write(results, args.out, stamp)
    print(report.render(results))
    print(f"saved {json_path} and {md_path} (and {args.out / 'latest.md'})")
    return 0


def _flags_given(args: argparse.Namespace) -> list[str]:
    """The pipeline benchmark's flags set in ``args`` (those a tool would silently ignore)."""
    defaults = argparse.ArgumentParser()
    add_bench_arguments(defaults)
    unset = vars(defaults.parse_args([]))
    return [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
            if name in unset and name not in ("tool", "tool_args") and value != unset[name]]


def _anchors(args: argparse.Namespace, spec: PipelineSpec, workload: Workload,
             kafka: KafkaSettings, home: Path, events: int, river_delay: int,
             ) -> dict[str, Any]:
    """The peers (unless ``--no-peers``) and the pipeline's drain, on the same stream. A
    measurement that fails is reported with its error, and the run goes on."""
    from services.cli.bench.drain import measure_drain
    from services.cli.bench.peers import measure_peers
    from services.cli.bench.scrape import broker_pid
    from services.common.kafka import wait_for_broker

    wait_for_broker(kafka, timeout=15)
    count = args.drain_events or events
    found: dict[str, Any] = {}
    if args.no_peers:
        found["peers_skipped"] = "--no-peers"
    else:
        wanted = requirements(args.quixstreams, version("river"))
        venv_path, venv_log = home / "bench-peers-venv", home / "logs" / "bench-peers-venv.log"

        def venv() -> PeerVenv:
            if not (venv_path / "bin" / "python").is_file():
                _say(f"creating the peers' virtualenv {venv_path} ({' '.join(wanted)}) ...")
            return ensure_peer_venv(venv_path, wanted, venv_log)

        logs = Path(tempfile.mkdtemp(prefix="streamml-bench-peers-"))
        try:
            found["peers"] = measure_peers(kafka, spec, workload, count, river_delay, venv,
                                           logs, uuid.uuid4().hex[:6], args.keep_topics, _say)
        except Exception as error:  # reported in the table; the pipeline is still measured
            found["peers_skipped"] = f"failed: {error}"
    try:
        found["drain"] = measure_drain(kafka, args.spec, workload, count, args.label_delay,
                                       uuid.uuid4().hex[:6], args.keep_topics, _say,
                                       broker_pid(home / "kafka" / "broker.pid"))
    except Exception as error:
        found["drain"] = {"error": f"{type(error).__name__}: {error}"}
    return found


def _pipeline(args: argparse.Namespace, spec_arg: str, workload: Workload,
              kafka: KafkaSettings, home: Path, stamp: str) -> dict[str, Any]:
    """Start the services, run the search, the latency runs and the profile; stop them."""
    from services.cli.bench import pipeline as measure
    from services.cli.bench.profiling import PY_SPY_HINT, py_spy_binary
    from services.cli.bench.scrape import broker_pid
    from services.cli.bench.stack_run import delete_topics, start_stack, stop_stack
    from services.cli.bench.wire import PacedPublisher, fast_producer
    from services.common.kafka import wait_for_broker

    quick = args.quick
    plan = measure.Plan(
        step_seconds=args.window or (8.0 if quick else 30.0),
        latency_seconds=args.latency_seconds or (8.0 if quick else 30.0),
        latency_warmup_seconds=2.0 if quick else 5.0,
        drain_timeout=60.0 if quick else 180.0, refinements=1 if quick else 2,
        ladder=tuple(float(rate) for rate in args.rates.split(",") if rate.strip()))
    profile_seconds = (args.profile_seconds if args.profile_seconds is not None
                       else (6.0 if quick else 20.0))
    wait_for_broker(kafka, timeout=15)
    run = uuid.uuid4().hex[:6]
    prefix = f"bench{run}-"
    bench_home = Path(tempfile.mkdtemp(prefix="streamml-bench-"))
    _say(f"pipeline: topic prefix {prefix}, services' logs in {bench_home / 'logs'} ...")
    running = start_stack(kafka, spec_arg, prefix, bench_home)
    found: dict[str, Any] = {"prefix": prefix, "home": str(bench_home),
                             "port_offset": running.port_offset}
    producer = fast_producer(kafka, linger_ms=1)
    publisher = PacedPublisher(producer, f"{prefix}events", f"{prefix}labels", workload, run,
                               args.label_delay)
    bench = measure.PipelineBench(kafka, running, publisher, run,
                                  broker_pid(home / "kafka" / "broker.pid"), workload.spec)
    profiles: dict[str, Any] = {}
    try:
        found["warm_up"] = bench.warm_up(200.0, 5.0)
        _say("searching for the highest sustained rate ...")
        found["search"] = bench.search(plan, log=_say)
        best = found["search"]["sustained_max"]
        rates = [1000.0] + ([round(0.8 * best)] if best else [])
        found["latency"] = []
        for rate in rates:
            _say(f"latency at {rate:.0f} events/s ...")
            found["latency"].append(bench.latency(rate, plan))
        binary = py_spy_binary()
        if profile_seconds > 0 and binary is None:
            profiles = {"error": f"py-spy is not installed ({PY_SPY_HINT})"}
        elif profile_seconds > 0 and binary is not None:
            rate = round(0.8 * best) if best else 250.0
            _say(f"profiling features and model at {rate:.0f} events/s ...")
            profiles = measure.record_profiles(bench, running, binary, rate, profile_seconds,
                                               args.out / "profiles", stamp)
        found["restarts"] = running.restarts()
    finally:
        stop_stack(running)
        if not args.keep_topics:
            delete_topics(kafka, prefix)
    found["rss_bytes"] = _peak_rss(found)
    runs = [*found.get("search", {}).get("steps", []), *found.get("latency", [])]
    found["checkpoint_bytes"] = max((run["peak_checkpoint_bytes"] for run in runs
                                     if run.get("peak_checkpoint_bytes") is not None),
                                    default=None)
    return {"pipeline": found, "profiles": profiles}


def _peak_rss(found: dict[str, Any]) -> dict[str, int]:
    """The largest resident memory of each service and the broker over every measurement."""
    peak: dict[str, int] = {}
    runs = [*found.get("search", {}).get("steps", []), *found.get("latency", [])]
    for run in runs:
        for name, value in run.get("peak_rss_bytes", {}).items():
            peak[name] = max(peak.get(name, 0), value)
    return peak


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
