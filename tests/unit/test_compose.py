"""docker-compose.yml, the Dockerfile and the Prometheus configs agree with each other.

No Docker engine is needed: the files are parsed and cross-checked. Each service's metrics port
appears in four places (its environment, its healthcheck, its published port and its Prometheus
target) and they must not drift apart; the services must reach Kafka through a listener the
broker actually advertises; the image must contain what the package build needs.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"
PROMETHEUS_COMPOSE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_LOCAL = ROOT / "deploy" / "prometheus" / "prometheus.local.yml"

# Compose service name -> (module run with `python -m`, metrics/health port).
SERVICES: dict[str, tuple[str, int]] = {
    "producer": ("services.producer", 9101),
    "features": ("services.features", 9102),
    "model": ("services.model", 9103),
    "drift": ("services.drift", 9104),
    "metrics-sink": ("services.metrics_sink", 9105),
}
TOPIC_INIT = "topic-init"
KAFKA = "kafka"
PROMETHEUS = "prometheus"
# Containers serve /metrics on every interface so Prometheus, in another container, can scrape.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - an expected value, nothing binds here

# Which host each Prometheus file scrapes a service on: its compose name, or the loopback.
PROMETHEUS_FILES: dict[str, Path] = {"compose": PROMETHEUS_COMPOSE, "local": PROMETHEUS_LOCAL}


def _load_yaml(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"missing {path.relative_to(ROOT)}"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.relative_to(ROOT)} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def _service(services: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    assert name in services, f"service {name!r} is missing from docker-compose.yml"
    service = services[name]
    assert isinstance(service, dict), f"service {name!r} is not a mapping"
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, whichever of the two compose forms it uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    assert isinstance(raw, dict), f"unexpected environment: {raw!r}"
    return {str(key): _scalar(value) for key, value in raw.items()}


def _scalar(value: Any) -> str:
    """YAML scalars as compose passes them on: booleans lower-case, None empty."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _argv(command: Any) -> list[str]:
    """A command or healthcheck test as an argument list (string form is split like a shell)."""
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), f"unexpected command: {command!r}"
    return [str(part) for part in command]


def _health_ports(service: dict[str, Any]) -> set[int]:
    """The ports of every ``.../health`` URL in a service's healthcheck."""
    healthcheck = service.get("healthcheck")
    assert isinstance(healthcheck, dict), "no healthcheck"
    test = " ".join(_argv(healthcheck.get("test")))
    return {int(port) for port in re.findall(r"https?://[^/\s'\"]+:(\d+)/health\b", test)}


def _published_container_ports(service: dict[str, Any]) -> set[int]:
    """Container-side ports of a service's ``ports`` entries (short or long syntax)."""
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def _scrape_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    """Prometheus job name -> its static targets."""
    jobs: dict[str, list[str]] = {}
    for job in config.get("scrape_configs") or []:
        name = str(job["job_name"])
        assert name not in jobs, f"duplicate job {name!r}"
        jobs[name] = [
            str(target)
            for static in job.get("static_configs") or []
            for target in static.get("targets") or []
        ]
    return jobs


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}; an empty host stays empty."""
    parsed: dict[str, tuple[str, int]] = {}
    for item in value.split(","):
        name, sep, address = item.strip().partition("://")
        assert sep, f"listener without a name: {item!r}"
        host, _, port = address.rpartition(":")
        parsed[name] = (host, int(port))
    return parsed


# --- The five services ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_runs_its_module(services: dict[str, dict[str, Any]], name: str) -> None:
    module, _ = SERVICES[name]
    assert _argv(_service(services, name).get("command")) == ["python", "-m", module]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_metrics_port_agrees_everywhere(services: dict[str, dict[str, Any]], name: str) -> None:
    _, port = SERVICES[name]
    service = _service(services, name)
    env = _environment(service)
    assert env.get("STREAMML_METRICS_PORT") == str(port)
    assert env.get("STREAMML_METRICS_HOST") == ALL_INTERFACES
    assert _health_ports(service) == {port}
    published = _published_container_ports(service)
    assert published <= {port}, f"{name} publishes {published}, serves on {port}"


@pytest.mark.parametrize("name", sorted(SERVICES))
@pytest.mark.parametrize("flavour", sorted(PROMETHEUS_FILES))
def test_prometheus_scrapes_the_metrics_port(flavour: str, name: str) -> None:
    _, port = SERVICES[name]
    jobs = _scrape_targets(_load_yaml(PROMETHEUS_FILES[flavour]))
    assert name in jobs, f"no {name!r} job in {flavour} Prometheus config"
    host = name if flavour == "compose" else "127.0.0.1"
    assert jobs[name] == [f"{host}:{port}"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_lifecycle(services: dict[str, dict[str, Any]], name: str) -> None:
    service = _service(services, name)
    assert service.get("restart") == "unless-stopped"
    assert service.get("stop_grace_period") == "15s"
    depends_on = service.get("depends_on")
    assert isinstance(depends_on, dict), "depends_on needs the long form to carry conditions"
    assert depends_on.get(TOPIC_INIT) == {"condition": "service_completed_successfully"}
    healthcheck = service.get("healthcheck") or {}
    # The slim image has no curl or wget: the check must use the Python it ships.
    assert _argv(healthcheck.get("test"))[:2] == ["CMD", "python"]


def test_ports_are_distinct() -> None:
    ports = [port for _, port in SERVICES.values()]
    assert len(set(ports)) == len(ports)


# --- Topic initialisation and Kafka --------------------------------------------------------


def test_topic_init_runs_once_after_kafka_is_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    service = _service(services, TOPIC_INIT)
    assert _argv(service.get("command")) == ["streamml", "topics", "create"]
    assert service.get("depends_on") == {KAFKA: {"condition": "service_healthy"}}
    # A one-shot job: restarting it would keep service_completed_successfully from ever holding.
    assert _scalar(service.get("restart", "no")) in {"no", "false"}


def test_kafka_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    image = str(_service(services, KAFKA).get("image"))
    repository, _, tag = image.partition(":")
    assert repository == "apache/kafka"
    assert tag != "latest"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"kafka image tag {tag!r} is not a version"


def test_every_pulled_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = str(service.get("image", ""))
        _, _, tag = image.rpartition(":")
        assert "/" not in tag and tag not in {"", "latest"}, f"{name} image {image!r} unpinned"
        assert re.search(r"\d", tag), f"{name} image {image!r} has no version"


def test_kafka_is_a_single_combined_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(_service(services, KAFKA))
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    _, controller_port = _listeners(env["KAFKA_LISTENERS"])[controller]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@{KAFKA}:{controller_port}"
    assert env.get("CLUSTER_ID"), "a fixed CLUSTER_ID keeps the data volume reusable"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].lower() == "false"
    factors = {key: value for key, value in env.items() if key.endswith("REPLICATION_FACTOR")}
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in factors
    assert "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR" in factors
    assert set(factors.values()) == {"1"}, f"one broker cannot hold {factors}"


def test_kafka_listeners_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    kafka = _service(services, KAFKA)
    env = _environment(kafka)
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) <= set(protocols), "every listener needs a security protocol"
    assert controller in listeners and controller not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert listeners.get(name, ("", -1))[1] == port, f"{name} advertised on another port"
    # The host-facing listener is advertised as localhost and published on the same port.
    host_side = [port for host, port in advertised.values() if host in {"localhost", "127.0.0.1"}]
    assert host_side, "no listener advertised for clients on the host"
    assert set(host_side) <= {
        int(str(entry).split(":")[0]) for entry in kafka.get("ports") or []
    }, "host listener port is not published"


@pytest.mark.parametrize("name", [*sorted(SERVICES), TOPIC_INIT])
def test_clients_bootstrap_through_an_advertised_internal_listener(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    kafka_env = _environment(_service(services, KAFKA))
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    internal = {f"{host}:{port}" for host, port in advertised.values() if host == KAFKA}
    assert internal, "kafka advertises no listener under its compose name"
    bootstrap = _environment(_service(services, name)).get("STREAMML_KAFKA__BOOTSTRAP_SERVERS")
    assert bootstrap, f"{name} has no STREAMML_KAFKA__BOOTSTRAP_SERVERS"
    for server in bootstrap.split(","):
        assert server.strip() in internal, f"{name} bootstraps from {server}, not {internal}"


def test_kafka_healthcheck_uses_the_internal_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = _service(services, KAFKA)
    advertised = _listeners(_environment(kafka)["KAFKA_ADVERTISED_LISTENERS"])
    internal_ports = {port for host, port in advertised.values() if host == KAFKA}
    argv = _argv((kafka.get("healthcheck") or {}).get("test"))
    assert "--bootstrap-server" in argv
    server = argv[argv.index("--bootstrap-server") + 1]
    assert int(server.rsplit(":", 1)[1]) in internal_ports


# --- Files the compose file points at ------------------------------------------------------


def test_bind_mounts_and_build_contexts_exist(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for entry in service.get("volumes") or []:
            if isinstance(entry, dict):
                kind, source = entry.get("type"), str(entry.get("source", ""))
            else:
                source = str(entry).split(":", 1)[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "bind":
                assert source.startswith("./"), f"{name}: bind {source!r} is outside the repo"
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            elif kind == "volume":
                assert source in declared_volumes, f"{name}: volume {source!r} is not declared"
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (ROOT / context / (dockerfile or "Dockerfile")).is_file()


def test_prometheus_container_mounts_its_config_and_rules(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = {
        str(entry).split(":")[1]: str(entry).split(":")[0]
        for entry in _service(services, PROMETHEUS).get("volumes") or []
    }
    assert mounts.get("/etc/prometheus/prometheus.yml") == "./deploy/prometheus/prometheus.yml"
    assert mounts.get("/etc/prometheus/rules") == "./deploy/prometheus/rules"
    rule_files = _load_yaml(PROMETHEUS_COMPOSE).get("rule_files") or []
    assert rule_files, "compose Prometheus config loads no rules"
    for pattern in rule_files:
        assert str(pattern).startswith("/etc/prometheus/rules/")


def test_local_prometheus_rules_resolve_next_to_the_config() -> None:
    for pattern in _load_yaml(PROMETHEUS_LOCAL).get("rule_files") or []:
        assert not str(pattern).startswith("/"), "local rule paths must be relative to the file"
        assert (PROMETHEUS_LOCAL.parent / str(pattern)).parent.is_dir()


def test_prometheus_files_have_the_same_jobs(services: dict[str, dict[str, Any]]) -> None:
    configs = {flavour: _load_yaml(path) for flavour, path in PROMETHEUS_FILES.items()}
    jobs = {flavour: set(_scrape_targets(config)) for flavour, config in configs.items()}
    # Replicas run only in the scaled layout: `streamml up --predictors N` adds their job to the
    # configuration it writes, the compose file has it for its "scaled" profile.
    assert jobs["compose"] - {"predictor"} == jobs["local"]
    assert jobs["compose"] <= set(services), "every job is named after a compose service"
    for flavour, config in configs.items():
        assert config.get("global", {}).get("scrape_interval") == "5s", flavour


# --- Grafana -------------------------------------------------------------------------------

GRAFANA = "grafana"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
GRAFANA_DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "streamml.yml"


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's ``./host:/container[:ro]`` volumes."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes") or []:
        host, _, rest = str(entry).partition(":")
        if host.startswith("./"):
            mounts[rest.split(":")[0]] = host
    return mounts


def test_grafana_provisions_its_datasource_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = _bind_mounts(_service(services, GRAFANA))
    assert mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
    dashboard_mounts = [path for path, host in mounts.items()
                        if host == "./deploy/grafana/dashboards"]
    assert len(dashboard_mounts) == 1, "deploy/grafana/dashboards must be mounted once"
    providers = _load_yaml(GRAFANA_PROVIDERS).get("providers") or []
    assert [provider["options"]["path"] for provider in providers] == dashboard_mounts
    home = _environment(_service(services, GRAFANA))["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    relative = home.removeprefix(dashboard_mounts[0] + "/")
    assert relative != home and (GRAFANA_DIR / "dashboards" / relative).is_file(), home


def test_grafana_datasource_is_the_compose_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    datasources = _load_yaml(GRAFANA_DATASOURCES).get("datasources") or []
    assert len(datasources) == 1
    source = datasources[0]
    assert source["type"] == "prometheus" and source["uid"] == "streamml-prometheus"
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", str(source["url"]))
    assert match, source["url"]
    assert match.group(1) == PROMETHEUS
    assert int(match.group(2)) in _published_container_ports(_service(services, PROMETHEUS))
    # $__rate_interval is derived from timeInterval: it must be Prometheus' scrape interval.
    scrape_interval = _load_yaml(PROMETHEUS_COMPOSE)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape_interval
    depends_on = _service(services, GRAFANA).get("depends_on")
    assert depends_on == {PROMETHEUS: {"condition": "service_healthy"}}


def test_grafana_lets_anonymous_users_view_only(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(_service(services, GRAFANA))
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${"), "no fixed admin password"


# --- The image -----------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continuation"
    return instructions


def test_dockerfile_copies_what_the_package_build_needs() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    readme = project["project"]["readme"]
    readme_file = readme if isinstance(readme, str) else readme["file"]
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in includes}
    needed = {"pyproject.toml", readme_file, *packages}

    copied: set[str] = set()
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "COPY":
            sources = [arg for arg in shlex.split(arguments) if not arg.startswith("--")][:-1]
            copied.update(source.rstrip("/") for source in sources)
    assert needed <= copied, f"Dockerfile does not copy {sorted(needed - copied)}"
    for source in sorted(copied):
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_dockerfile_installs_the_package_as_a_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    base = next(arguments for keyword, arguments in instructions if keyword == "FROM")
    match = re.fullmatch(r"python:(\d+\.\d+)-slim\S*", base)
    assert match, f"unexpected base image {base!r}"
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    requires = SpecifierSet(project["project"]["requires-python"])
    assert f"{match.group(1)}.0" in requires, f"{base} does not satisfy {requires}"

    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(re.search(r"pip install (--\S+ )*\.(\s|$)", run) for run in runs)
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
