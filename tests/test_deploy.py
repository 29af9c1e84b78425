"""The production stack: docker-compose.yml, the central broker's configuration, TLS, the Pi's files.

No container engine runs here, so the compose file is checked with docker-compose 1.29's `config`
(offline: variables, profiles, the file's schema), and the broker's part runs for real: Debian's
Mosquitto 2 started with deploy/mosquitto's mosquitto.conf and acl, changed only in its listener
ports and paths, with the password file made by deploy/mosquitto/entrypoint.sh, the same script the
container runs. tila's services (a real ``tila gateway`` process) connect to it with credentials and
with TLS (a throwaway CA made with openssl).
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from conftest import TILA, Mosquitto, free_port, wait_for, wait_port
from paho.mqtt.enums import CallbackAPIVersion

from tila.mqtt import Connection, MqttUrl, UrlError
from tila.sensors.site import bundled_site_path, load_site

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MOSQUITTO_DIR = DEPLOY / "mosquitto"
COMPOSE = shutil.which("docker-compose")
OPENSSL = shutil.which("openssl")
SITE = load_site(bundled_site_path())
EVENTS = f"tila/v1/{SITE.id}/events/+"


def secret() -> str:
    return secrets.token_hex(12)


# ------------------------------------------------------------------------------------ compose


def env_example() -> dict[str, str]:
    """.env.example's variables and values, in order."""
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, eq, value = line.partition("=")
            assert eq, f".env.example: not KEY=value: {line!r}"
            values[key] = value
    return values


def filled_env() -> dict[str, str]:
    """.env.example with every change-me-... placeholder replaced by a random value."""
    return {k: re.sub(r"change-me-[a-z0-9-]+", lambda m: secret(), v) for k, v in env_example().items()}


def compose_config(
    tmp_path: Path, env: dict[str, str], *args: str, profile: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config ARGS`` with exactly ``env`` (as an env file)."""
    assert COMPOSE is not None
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    return subprocess.run(
        [
            COMPOSE,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(env_file),
            *(["--profile", profile] if profile else []),
            "config",
            *args,
        ],
        # Nothing from the caller's environment: compose prefers it to the env file.
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


needs_compose = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose is not installed (scripts/test installs Debian's docker-compose)"
)


@needs_compose
def test_compose_file_is_valid_with_a_complete_env(tmp_path: Path) -> None:
    env = filled_env()
    done = compose_config(tmp_path, env, profile="sim")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"mosquitto", "influxdb", "aggregator", "api", "sim-broker", "sim", "gateway-sim"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} → {dep}: {how}"
    # The secrets reached the services that need them, in the URLs tila parses.
    agg = services["aggregator"]["environment"]
    assert agg["TILA_MQTT"] == f"mqtt://tila-aggregator:{env['TILA_MQTT_AGGREGATOR_PASSWORD']}@mosquitto:1883"
    assert agg["TILA_STORE"] == (
        f"influxdb://tila-aggregator:{env['TILA_INFLUX_AGGREGATOR_PASSWORD']}@influxdb:8086/tila"
    )
    assert MqttUrl.parse(agg["TILA_MQTT"]).username == "tila-aggregator"
    api = services["api"]["environment"]
    assert api["TILA_TOKENS"] == env["TILA_TOKENS"]
    assert api["TILA_STORE"].startswith("influxdb://tila-api:")
    assert services["mosquitto"]["environment"]["TILA_MQTT_GATEWAYS"] == env["TILA_MQTT_GATEWAYS"]
    influx = services["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == env["TILA_INFLUX_ADMIN_TOKEN"]
    assert influx["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    # Volumes for the broker's sessions, InfluxDB, the aggregator's journal, the API's data and the
    # simulated gateway's outbox.
    assert set(config["volumes"]) >= {
        "mosquitto-data",
        "influxdb-data",
        "aggregator-data",
        "api-data",
        "gateway-sim-data",
    }
    assert "aggregator-data:/var/lib/tila/aggregator:rw" in services["aggregator"]["volumes"]
    assert agg["TILA_DATA_DIR"] == "/var/lib/tila/aggregator"
    assert api["TILA_DATA_DIR"] == "/var/lib/tila/api"
    assert "change-me" not in done.stdout


def command_options(command: str) -> set[str]:
    """The TILA_* variables ``tila COMMAND`` reads: its options' and the top-level ones."""
    from tila.cli import build_parser

    parser, _ = build_parser([command])
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {
        "TILA_" + o[2:].upper().replace("-", "_")
        for p in (parser, sub)
        for a in p._actions
        for o in a.option_strings
        if o.startswith("--") and o not in ("--help", "--version")
    }


@needs_compose
def test_compose_services_settings_parse_as_tila_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tila service's command and environment, as compose resolves them, is accepted by that
    command's own parser: every TILA_* variable is one of its options, and every value parses."""
    from tila.cli import build_parser

    done = compose_config(tmp_path, filled_env(), profile="sim")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    for name in ("aggregator", "api", "sim", "gateway-sim"):
        command, env = services[name]["command"], services[name]["environment"]
        unknown = set(env) - command_options(command[0])
        assert not unknown, f"{name}: {unknown} are no options of tila {command[0]}"
        for key in [k for k in os.environ if k.startswith("TILA_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        parser, _ = build_parser(command)
        try:
            parser.parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: tila {' '.join(command)} refuses its settings (see stderr)")


@needs_compose
def test_compose_sim_profile_is_optional(tmp_path: Path) -> None:
    done = compose_config(tmp_path, {**filled_env(), "TILA_MQTT_SIM_PASSWORD": "off"})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    optional = {name for name, s in services.items() if "sim" in s.get("profiles", [])}
    assert optional == {"sim-broker", "sim", "gateway-sim"}
    # Nothing the production services need is in the profile.
    for name, service in services.items():
        if name not in optional:
            assert not set(service.get("depends_on", {})) & optional, name


def test_env_example_lists_every_variable_of_the_compose_file() -> None:
    lines = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    example = env_example()
    assert used == set(example), f"missing {used - set(example)}, unused {set(example) - used}"
    # Every secret is required (`:?`) wherever it is used, and is a placeholder tila refuses.
    for name in used:
        forms = set(re.findall(r"(?<!\$)\$\{" + name + r"(:[?-])", text))
        if re.search(r"PASSWORD|TOKEN|GATEWAYS", name):
            assert forms == {":?"}, f"{name} is a secret: always ${{{name}:?message}}"
            assert "change-me-" in example[name], name


@needs_compose
def test_compose_names_the_missing_secret(tmp_path: Path) -> None:
    env = filled_env()
    required = sorted(k for k in env if re.search(r"PASSWORD|TOKEN|GATEWAYS", k))
    assert len(required) == 9
    for name in required:
        done = compose_config(tmp_path, {k: v for k, v in env.items() if k != name})
        assert done.returncode != 0, name
        assert f"set {name} in .env" in done.stderr, done.stderr
        # An empty value is as good as none.
        done = compose_config(tmp_path, {**env, name: ""})
        assert done.returncode != 0 and f"set {name} in .env" in done.stderr, name


def test_dockerfile_keeps_secrets_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for pattern in (".env", ".venv", ".git", "deploy/mosquitto/certs"):
        assert pattern in ignored
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "\nUSER tila\n" in dockerfile
    # The volumes' mount points exist in the image, owned by the service's user.
    for path in ("/var/lib/tila/aggregator", "/var/lib/tila/api", "/var/lib/tila/gateway"):
        assert path in dockerfile


def test_influxdb_init_script_is_executable_and_maps_the_database() -> None:
    script = DEPLOY / "influxdb" / "10-tila-v1.sh"
    # The image runs only executable *.sh files of /docker-entrypoint-initdb.d.
    assert os.access(script, os.X_OK)
    text = script.read_text(encoding="utf-8")
    assert "influx v1 dbrp create" in text and "--default" in text
    assert text.count("influx v1 auth create") == 2
    subprocess.run(["bash", "-n", str(script)], check=True)
    # .env.example's placeholders stop it before it asks InfluxDB anything (InfluxDB takes them).
    env = {k: v for k, v in env_example().items() if k.startswith("TILA_INFLUX")}
    env |= {
        "DOCKER_INFLUXDB_INIT_PASSWORD": secret(),
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": env["TILA_INFLUX_ADMIN_TOKEN"],
        "TILA_INFLUX_AGGREGATOR_PASSWORD": secret(),
        "TILA_INFLUX_API_PASSWORD": secret(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "tila InfluxDB setup: error: DOCKER_INFLUXDB_INIT_ADMIN_TOKEN is still the placeholder of .env.example"
    )


# --------------------------------------------------------------------------- the central broker


class SecuredBroker:
    """Debian's Mosquitto with deploy/mosquitto's configuration, adapted only in ports and paths."""

    def __init__(self, workdir: Path, gateways: dict[str, str], certs: Path | None = None) -> None:
        self.dir = workdir
        self.run_dir = workdir / "run"
        self.passwords = {"tila-aggregator": secret(), "tila-api": secret(), **gateways}
        self.certs = certs
        self.broker = Mosquitto(workdir / "mosquitto")
        self.tls_port = free_port() if certs else None
        self.make_passwords()
        self.log = self.broker.dir / "mosquitto.log"
        self.broker.conf.write_text(self.adapt((MOSQUITTO_DIR / "mosquitto.conf").read_text()))
        self.broker.start()
        if self.tls_port:
            wait_port(self.tls_port)

    @property
    def port(self) -> int:
        return self.broker.port

    def make_passwords(self) -> None:
        gateways = {k: v for k, v in self.passwords.items() if not k.startswith("tila-")}
        done = run_entrypoint(
            self.run_dir,
            TILA_MQTT_AGGREGATOR_PASSWORD=self.passwords["tila-aggregator"],
            TILA_MQTT_API_PASSWORD=self.passwords["tila-api"],
            TILA_MQTT_GATEWAYS=",".join(f"{k}:{v}" for k, v in gateways.items()),
            TILA_MQTT_SIM_PASSWORD="off",
            TILA_MQTT_TLS="on" if self.certs else "off",
            TILA_MQTT_CERTS_DIR=str(self.certs or self.dir / "no-certs"),
        )
        assert done.returncode == 0, done.stderr
        for conf in (self.run_dir / "conf.d").glob("*.conf"):
            conf.write_text(self.adapt(conf.read_text(), extra=False))

    def adapt(self, text: str, extra: bool = True) -> str:
        text = text.replace("listener 1883", f"listener {self.broker.port} 127.0.0.1") if extra else text
        if self.certs:
            text = text.replace("listener 8883", f"listener {self.tls_port} 127.0.0.1")
        text = (
            text.replace("/mosquitto/run/", f"{self.run_dir}/")
            .replace("/mosquitto/config/", f"{MOSQUITTO_DIR}/")
            .replace("/mosquitto/data/", f"{self.dir}/mosquitto/")
            .replace("log_dest stdout", f"log_dest file {self.dir}/mosquitto/mosquitto.log")
        )
        # As the conftest's brokers: started as root here, Mosquitto would switch to its own user,
        # which cannot reach the test's directories.
        return text + ("\nuser root\n" if extra else "")

    def url(self, user: str, password: str | None = None, tls: bool = False, query: str = "") -> str:
        pw = self.passwords[user] if password is None else password
        port = self.tls_port if tls else self.port
        return f"{'mqtts' if tls else 'mqtt'}://{user}:{pw}@127.0.0.1:{port}{query}"

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file and ACL again."""
        assert self.broker.proc is not None
        self.broker.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        self.broker.stop()


def run_entrypoint(run_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(MOSQUITTO_DIR / "entrypoint.sh")],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TILA_MQTT_RUN_DIR": str(run_dir),
            "TILA_MQTT_CONFIG_DIR": str(MOSQUITTO_DIR),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def broker(tmp_path: Path, mosquitto_available: None) -> Any:
    b = SecuredBroker(tmp_path / "central", {"gw-a": secret(), "gw-b": secret()})
    yield b
    b.stop()


def connack(port: int, username: str | None, password: str | None) -> Any:
    """The broker's answer to a CONNECT with these credentials (paho's reason code)."""
    answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{secrets.token_hex(4)}", protocol=paho.MQTTv311
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: answers.put(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return answers.get(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


class Client:
    """A tila Connection as one user, recording what it receives."""

    def __init__(self, url: str, subscriptions: tuple[str, ...] | list[str] = ()) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.conn = Connection(
            MqttUrl.parse(url),
            f"test-{secrets.token_hex(4)}",
            subscriptions=[(s, 1) for s in subscriptions],
            on_message=lambda m: self.got.append((m.topic, m.payload)),
        )
        self.conn.start()
        assert self.conn.wait_connected(30), f"{url} did not connect"
        if subscriptions:
            assert self.conn.subscribed.wait(30)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.conn.publish(topic, payload, qos=1, retain=retain)
        # Mosquitto 2 acknowledges a QoS 1 publish it then drops for the ACL.
        assert self.conn.flush(30)

    def topics(self) -> list[str]:
        return [t for t, _ in self.got]

    def stop(self) -> None:
        self.conn.stop(publish_offline=False)


@pytest.mark.integration
def test_broker_refuses_wrong_or_missing_credentials(broker: SecuredBroker) -> None:
    assert connack(broker.port, "gw-a", broker.passwords["gw-a"]) == 0
    for user, password in (("gw-a", "wrong-" + secret()), ("gw-a", broker.passwords["gw-b"]), (None, None)):
        rc = connack(broker.port, user, password)
        assert rc.is_failure and rc.value in (134, 135), (
            user,
            rc,
        )  # bad user name or password / not authorised
    # A user that is not in the password file at all.
    assert connack(broker.port, "gw-c", secret()).is_failure


def publish_once(url: str, topic: str, payload: bytes) -> None:
    """Publish on a connection of its own: Mosquitto 2.0.11 acknowledges a QoS 1 publish that the
    ACL denies, drops it, and then closes the (MQTT 3.1.1) connection."""
    client = Client(url)
    try:
        client.publish(topic, payload)
    finally:
        client.stop()


@pytest.mark.integration
def test_acl_each_user_reads_and_writes_only_its_own_topics(broker: SecuredBroker) -> None:
    site = SITE.id
    space = f"tila/v1/{site}/spaces/{SITE.spaces[0].id}/state"
    aggregator = Client(broker.url("tila-aggregator"), [EVENTS])
    api = Client(
        broker.url("tila-api"),
        [f"tila/v1/{site}/spaces/+/state", f"tila/v1/{site}/gateways/+/+", f"tila/v1/{site}/events/+"],
    )
    try:
        # Forbidden: a gateway speaking for another or for the aggregator, the API publishing
        # anything, the aggregator posing as a gateway. Each publish is acknowledged by the broker
        # once it has routed or dropped it.
        for user, topic in (
            ("gw-a", f"tila/v1/{site}/events/gw-b"),
            ("gw-a", space),
            ("gw-a", f"tila/v1/{site}/gateways/gw-b/status"),
            ("tila-api", f"tila/v1/{site}/events/gw-a"),
            ("tila-api", f"tila/v1/{site}/events/tila-api"),
            ("tila-api", space),
            ("tila-api", f"tila/v1/{site}/gateways/tila-api/status"),
            ("tila-aggregator", f"tila/v1/{site}/events/tila-aggregator"),
            ("tila-aggregator", f"tila/v1/{site}/gateways/gw-a/status"),
        ):
            publish_once(broker.url(user), topic, f"{user} on {topic}".encode())
        # Allowed, published after: a reader that got these would have got the others first.
        publish_once(broker.url("gw-a"), f"tila/v1/{site}/events/gw-a", b"gw-a's own")
        publish_once(broker.url("gw-b"), f"tila/v1/{site}/events/gw-b", b"gw-b's own")
        publish_once(broker.url("gw-a"), f"tila/v1/{site}/gateways/gw-a/status", b"online")
        aggregator.publish(space, b'{"state":"free"}', retain=True)

        wait_for(lambda: len(aggregator.got) >= 2, 60, what="the gateways' own events")
        wait_for(lambda: len(api.got) >= 2, 60, what="the state and the status at the API")
        assert aggregator.got == [
            (f"tila/v1/{site}/events/gw-a", b"gw-a's own"),
            (f"tila/v1/{site}/events/gw-b", b"gw-b's own"),
        ]
        # The API reads states and gateways' status, never events: the broker accepts its
        # subscription to them and delivers nothing it may not read.
        assert api.got == [(f"tila/v1/{site}/gateways/gw-a/status", b"online"), (space, b'{"state":"free"}')]
    finally:
        aggregator.stop()
        api.stop()


@pytest.mark.integration
def test_entrypoint_refuses_bad_settings(tmp_path: Path) -> None:
    good = {
        "TILA_MQTT_AGGREGATOR_PASSWORD": secret(),
        "TILA_MQTT_API_PASSWORD": secret(),
        "TILA_MQTT_GATEWAYS": f"gw1:{secret()} gw2:{secret()}",
        "TILA_MQTT_SIM_PASSWORD": "off",
    }
    done = run_entrypoint(tmp_path / "ok", **good)
    assert done.returncode == 0, done.stderr
    users = [line.split(":")[0] for line in (tmp_path / "ok" / "passwd").read_text().splitlines()]
    assert users == ["tila-aggregator", "tila-api", "tila-health", "gw1", "gw2"]
    assert "gw1" not in (tmp_path / "ok" / "passwd").read_text().split(":", 2)[1]  # hashed

    cases = {
        "TILA_MQTT_API_PASSWORD": ("change-me-mqtt-api-password", "placeholder"),
        "TILA_MQTT_AGGREGATOR_PASSWORD": ("", "is empty"),
        "TILA_MQTT_GATEWAYS": (f"gw1:{secret()} tila-api:{secret()}", "service user's name"),
    }
    for name, (value, words) in cases.items():
        done = run_entrypoint(tmp_path / "bad", **{**good, name: value})
        assert done.returncode == 2 and words in done.stderr, (name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    for gateways, words in (
        ("gw1", "has no ':password'"),
        (f"GW1:{secret()}", "lower-case"),
        (f"gw1:{secret()},gw1:{secret()}", "twice"),
        ("gw1:short", "shorter than 16"),
        ("", "names no gateway"),
    ):
        done = run_entrypoint(tmp_path / "bad", **{**good, "TILA_MQTT_GATEWAYS": gateways})
        assert done.returncode == 2 and words in done.stderr, (gateways, done.stderr)
    done = run_entrypoint(
        tmp_path / "bad", **{**good, "TILA_MQTT_TLS": "on", "TILA_MQTT_CERTS_DIR": str(tmp_path)}
    )
    assert done.returncode == 2 and "server.crt" in done.stderr


# ------------------------------------------------------------------------ a real tila gateway


def device_messages(when: datetime, count: int) -> list[tuple[str, bytes]]:
    from tila.sim import payloads

    zigbee = [s for s in SITE.sensors if s.format == "zigbee2mqtt"][:count]
    return [payloads.empty_reading(s, when)[:2] for s in zigbee]


def start_gateway(tila_proc: Any, gw: str, local: Mosquitto, central_url: str, data: Path) -> Any:
    return tila_proc(
        f"gateway-{gw}",
        ["gateway", "--site", "bundled", "--id", gw, "--local", local.url, "--central", central_url],
        env={"TILA_DATA_DIR": str(data), "TILA_HEALTH_INTERVAL": "1"},
    )


def publish_devices(local: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    dev = Client(local.url)
    for topic, payload in messages:
        dev.publish(topic, payload)
    dev.stop()


def outbox_depth(data: Path, table: str = "outbox") -> int:
    """Rows in the gateway's outbox (read as docs/pi.md does, while the gateway runs)."""
    db = sqlite3.connect(f"file:{data / 'outbox.db'}?mode=ro", uri=True)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def events_of(client: Client, gateway: str) -> list[dict[str, Any]]:
    from tila.sensors.wire import decode_batch

    out: list[dict[str, Any]] = []
    for topic, payload in list(client.got):
        if topic.endswith(f"/events/{gateway}"):
            out.extend({"sensor": s.event.sensor, "seq": s.seq} for s in decode_batch(payload)[0])
    return out


@pytest.mark.integration
def test_gateway_with_credentials_from_a_password_file(
    tmp_path: Path, broker: SecuredBroker, mosquitto: Any, tila_proc: Any
) -> None:
    local = mosquitto("local")
    pw_file = tmp_path / "central.password"
    pw_file.write_text(broker.passwords["gw-a"] + "\n")
    pw_file.chmod(0o600)
    aggregator = Client(broker.url("tila-aggregator"), [EVENTS])
    url = f"mqtt://gw-a@127.0.0.1:{broker.port}?password_file={pw_file}"
    gateway = start_gateway(tila_proc, "gw-a", local, url, tmp_path / "gw-a")
    try:
        wait_for(lambda: "MQTT connected to mqtt://gw-a@127.0.0.1" in gateway.output(), 60, what="uplink")
        messages = device_messages(datetime.now(UTC), 5)
        publish_devices(local, messages)
        sensors = {s.id for s in SITE.sensors if s.topic in {t for t, _ in messages}}
        assert len(sensors) == 5
        wait_for(
            lambda: {e["sensor"] for e in events_of(aggregator, "gw-a")} >= sensors,
            30,
            what="every sensor's events",
        )
        # The password is in no log line, nor in the process's command line.
        assert broker.passwords["gw-a"] not in gateway.output()
        assert broker.passwords["gw-a"] not in " ".join(gateway.args)
    finally:
        aggregator.stop()
    assert gateway.stop() == 0, gateway.output()[-2000:]


@pytest.mark.integration
def test_gateway_with_a_wrong_password_retries_and_keeps_its_events(
    tmp_path: Path, broker: SecuredBroker, mosquitto: Any, tila_proc: Any
) -> None:
    local = mosquitto("local")
    data = tmp_path / "gw-b"
    right = broker.passwords["gw-b"]
    wrong = secret()
    aggregator = Client(broker.url("tila-aggregator"), [EVENTS])
    gateway = start_gateway(tila_proc, "gw-b", local, broker.url("gw-b", wrong), data)
    try:
        line = "MQTT connect to mqtt://gw-b@127.0.0.1:{} refused: Not authorized; check the user name and password"
        wait_for(lambda: line.format(broker.port) in gateway.output(), 60, what="the refusal in the log")
        publish_devices(local, device_messages(datetime.now(UTC), 4))
        # Every device message was taken: the outbox records each with its events.
        wait_for(
            lambda: (data / "outbox.db").exists() and outbox_depth(data, "local_seen") == 4,
            20,
            what="the outbox",
        )
        depth = outbox_depth(data)
        assert depth >= 4
        assert gateway.alive()
        assert events_of(aggregator, "gw-b") == []
        assert wrong not in gateway.output()

        # The operator gives the broker the password the gateway has: it gets in at its next try
        # and sends everything it kept.
        broker.passwords["gw-b"] = wrong
        broker.make_passwords()
        broker.reload()
        wait_for(lambda: len(events_of(aggregator, "gw-b")) >= depth, 60, what="the kept events")
        wait_for(lambda: outbox_depth(data) == 0, 60, what="the outbox to drain")
        seqs = [e["seq"] for e in events_of(aggregator, "gw-b")]
        assert sorted(set(seqs)) == list(range(1, depth + 1))
    finally:
        aggregator.stop()
        broker.passwords["gw-b"] = right
    assert gateway.stop() == 0, gateway.output()[-2000:]


def healthcheck(kind: str, **env: str) -> subprocess.CompletedProcess[str]:
    """deploy/healthcheck.py as the container runs it: the service's own settings in the environment."""
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), kind],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


@pytest.mark.integration
def test_services_as_their_own_users_and_their_healthchecks(
    tmp_path: Path, broker: SecuredBroker, mosquitto: Any, tila_proc: Any
) -> None:
    """The aggregator, the API and a gateway, each as its MQTT user: what they publish and read
    passes the ACL (a state reaches the API through the broker), and each one's healthcheck
    (deploy/healthcheck.py, as docker-compose.yml runs it) says healthy."""
    local = mosquitto("local")
    store = f"sqlite:///{tmp_path / 'tila.db'}"
    port = free_port()
    aggregator = tila_proc(
        "aggregator",
        ["aggregator", "--site", "bundled", "--mqtt", broker.url("tila-aggregator"), "--store", store],
    )
    api = tila_proc(
        "api",
        ["api", "--site", "bundled", "--mqtt", broker.url("tila-api"), "--store", store, "--port", str(port)],
        env={"TILA_TOKENS": f"analyst:{secret()}"},
    )

    def logs() -> str:
        return "\n".join(f"--- {p.name}:\n{p.output()[-1500:]}" for p in (aggregator, api))

    # Healthy once its retained report is on the broker: published after it subscribed to the
    # events, so no event is published before the aggregator's session takes it.
    agg = wait_for(
        lambda: (
            (
                r := healthcheck("aggregator", TILA_MQTT=broker.url("tila-aggregator"), TILA_SITE="bundled")
            ).returncode
            == 0
            and r
        ),
        120,
        what=f"a healthy aggregator\n{logs()}",
    )
    assert agg.stdout.strip() == "aggregator 1: ok"

    gateway = start_gateway(tila_proc, "gw-a", local, broker.url("gw-a"), tmp_path / "gw-a")
    wait_for(lambda: "MQTT connected" in gateway.output(), 60, what="the gateway's uplink")
    messages = device_messages(datetime.now(UTC), 3)
    publish_devices(local, messages)
    spaces = {s.space for s in SITE.sensors if s.topic in {t for t, _ in messages}}

    def states() -> dict[str, str]:
        rows = get_json(f"http://127.0.0.1:{port}/v1/spaces") or []
        return {r["id"]: r["state"] for r in rows if r["id"] in spaces and r["state"] != "unknown"}

    try:
        wait_for(lambda: len(states()) == len(spaces), 60, what="the states at the API")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs()}") from None
    assert set(states().values()) == {"free"}

    gw_env = {
        "TILA_CENTRAL": broker.url("gw-a"),
        "TILA_SITE": "bundled",
        "TILA_ID": "gw-a",
        "TILA_HEALTH_INTERVAL": "1",
    }
    done = wait_for(lambda: (r := healthcheck("gateway", **gw_env)).returncode == 0 and r, 60, what="gateway")
    assert done.stdout.startswith("gateway gw-a: ok"), done.stdout + done.stderr
    done = wait_for(
        lambda: (r := healthcheck("api", TILA_PORT=str(port))).returncode == 0 and r, 60, what="api"
    )
    assert '"status":"ok"' in done.stdout.replace(" ", "")

    # Unhealthy answers: a gateway that never reported (its user may read only its own reports),
    # and a wrong password.
    done = healthcheck("gateway", **{**gw_env, "TILA_CENTRAL": broker.url("gw-b"), "TILA_ID": "gw-b"})
    assert done.returncode == 1 and "no report on tila/v1/work20lab/gateways/gw-b/health" in done.stdout
    done = healthcheck("aggregator", TILA_MQTT=broker.url("tila-aggregator", secret()), TILA_SITE="bundled")
    assert done.returncode == 1 and done.stdout.startswith("unhealthy: cannot connect"), done.stdout
    assert api.alive()


# ------------------------------------------------------------------------------------------ TLS


def make_certs(directory: Path) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    directory.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        assert OPENSSL is not None
        subprocess.run([OPENSSL, *args], cwd=directory, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=tila test CA", "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(ext + "\n")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=tila test {name}")  # fmt: skip
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return directory


needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    return make_certs(tmp_path / "pki")


def broker_certs(certs: Path, tmp_path: Path, client_certs: bool) -> Path:
    """The files as TILA_MQTT_CERTS holds them."""
    mounted = tmp_path / "mounted-certs"
    mounted.mkdir()
    shutil.copy(certs / "server.crt", mounted / "server.crt")
    shutil.copy(certs / "server.key", mounted / "server.key")
    if client_certs:
        shutil.copy(certs / "ca.pem", mounted / "ca.crt")
    return mounted


@needs_openssl
@pytest.mark.integration
def test_gateway_over_tls_with_the_ca_file(
    tmp_path: Path, certs: Path, mosquitto_available: None, mosquitto: Any, tila_proc: Any
) -> None:
    broker = SecuredBroker(tmp_path / "central", {"gw-a": secret()}, broker_certs(certs, tmp_path, False))
    local = mosquitto("local")
    try:
        aggregator = Client(broker.url("tila-aggregator"), [EVENTS])
        url = broker.url("gw-a", tls=True, query=f"?ca={certs / 'ca.pem'}")
        gateway = start_gateway(tila_proc, "gw-a", local, url, tmp_path / "gw-a")
        wait_for(
            lambda: f"MQTT connected to mqtts://gw-a@127.0.0.1:{broker.tls_port}" in gateway.output(), 20
        )
        publish_devices(local, device_messages(datetime.now(UTC), 3))
        wait_for(lambda: len(events_of(aggregator, "gw-a")) >= 3, 60, what="events over TLS")

        # Without the CA, the broker's certificate does not verify against the system's CAs: the
        # gateway says so, and keeps trying.
        other = start_gateway(tila_proc, "gw-a", local, broker.url("gw-a", tls=True), tmp_path / "gw-a-no-ca")
        wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in other.output(), 60, what="the TLS failure in the log")
        line = next(x for x in other.output().splitlines() if "CERTIFICATE_VERIFY_FAILED" in x)
        assert f"MQTT connect to mqtts://gw-a@127.0.0.1:{broker.tls_port} failed" in line
        assert other.alive()
        aggregator.stop()
        assert gateway.stop() == 0, gateway.output()[-2000:]
    finally:
        broker.stop()


@needs_openssl
@pytest.mark.integration
def test_tls_with_client_certificates(tmp_path: Path, certs: Path, mosquitto_available: None) -> None:
    broker = SecuredBroker(tmp_path / "central", {"gw-a": secret()}, broker_certs(certs, tmp_path, True))
    try:
        ca = certs / "ca.pem"
        with_cert = f"?ca={ca}&cert={certs / 'client.crt'}&key={certs / 'client.key'}"
        client = Client(broker.url("gw-a", tls=True, query=with_cert))
        client.stop()
        # Without a client certificate the TLS handshake fails: no connection at all.
        conn = Connection(MqttUrl.parse(broker.url("gw-a", tls=True, query=f"?ca={ca}")), "no-cert")
        conn.start()
        assert not conn.wait_connected(3)
        conn.stop(publish_offline=False, flush_timeout=0)
    finally:
        broker.stop()


# ------------------------------------------------------------------------------- MQTT URLs


def test_mqtt_url_forms(tmp_path: Path, certs: Path) -> None:
    # Every earlier form still parses as before.
    assert MqttUrl.parse("mqtt://127.0.0.1:1883") == MqttUrl("127.0.0.1", 1883)
    assert str(MqttUrl.parse("mqtt://u:p%40ss@h")) == "mqtt://u@h:1883"
    assert MqttUrl.parse("mqtt://u:p%40ss@h").password == "p@ss"
    assert MqttUrl.parse("mqtts://h").port == 8883
    pw = tmp_path / "pw"
    pw.write_text("s3cret-from-a-file\n")
    url = MqttUrl.parse(f"mqtts://gw1@h:8883?ca={certs / 'ca.pem'}&password_file={pw}")
    assert (url.username, url.password, url.ca, url.password_file) == (
        "gw1",
        "s3cret-from-a-file",
        str(certs / "ca.pem"),
        str(pw),
    )
    assert "s3cret" not in str(url) and f"ca={certs / 'ca.pem'}" in str(url)
    url = MqttUrl.parse(
        f"mqtts://h?ca={certs / 'ca.pem'}&cert={certs / 'client.crt'}&key={certs / 'client.key'}"
    )
    assert url.ssl_context().verify_mode.name == "CERT_REQUIRED"


def test_mqtt_url_errors(tmp_path: Path, certs: Path) -> None:
    empty, two = tmp_path / "empty", tmp_path / "two"
    empty.write_text("")
    two.write_text("a\nb\n")
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cases = {
        f"mqtts://h?ca={tmp_path / 'nope.pem'}": "CA file",
        f"mqtts://h?ca={tmp_path / 'garbage.pem'}": "not PEM CA certificates",
        f"mqtts://h?cert={certs / 'client.crt'}&key={tmp_path / 'nope.key'}": "client key",
        f"mqtts://h?cert={certs / 'client.crt'}&key={certs / 'server.key'}": "cannot be used",
        f"mqtts://h?key={certs / 'client.key'}": "a key but no cert",
        f"mqtt://h?ca={certs / 'ca.pem'}": "not mqtts://",
        f"mqtt://u@h?password_file={tmp_path / 'nope'}": "password_file",
        f"mqtt://u@h?password_file={empty}": "is empty",
        f"mqtt://u@h?password_file={two}": "more than one line",
        f"mqtt://u:p@h?password_file={two}": "both a password and a password_file",
        f"mqtt://h?password_file={two}": "no user name",
        "mqtt://h?tls=1": "takes only",
        "mqtt://h?ca=": "empty ca",
        "mqtt://h/path": "no path",
    }
    for text, words in cases.items():
        with pytest.raises(UrlError) as info:
            MqttUrl.parse(text)
        assert words in str(info.value), (text, str(info.value))
        assert "\n" not in str(info.value)


def test_cli_names_a_missing_ca_file_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*TILA, "gateway", "--site", "bundled", "--id", "gw1", "--local", "mqtt://127.0.0.1:1",
         "--central", f"mqtts://gw1@h:8883?ca={tmp_path / 'missing.pem'}&password_file={tmp_path / 'pw'}",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--central" in lines[0] and "No such file" in lines[0], done.stderr


# --------------------------------------------------------------------------------- the Pi


SYSTEMD = DEPLOY / "systemd"


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, eq, value = line.partition("=")
            assert eq, f"{path.name}: not Key=value: {line!r}"
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit(tmp_path: Path) -> None:
    unit = SYSTEMD / "tila-gateway.service"
    s = unit_settings(unit)
    assert s["ExecStart"] == ["/opt/tila/bin/tila gateway"]
    assert s["EnvironmentFile"] == ["/etc/tila/gateway.env"]
    assert s["Restart"] == ["always"] and s["RestartPreventExitStatus"] == ["2"]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert s["StateDirectory"] == ["tila"] and "/var/lib/tila" in s["ReadWritePaths"]
    assert s["User"] == ["tila"]
    assert s["StandardError"] == ["journal"]
    verify = shutil.which("systemd-analyze")
    if verify is None:
        return  # the structural check above is all there is without systemd
    # systemd-analyze checks that the command exists: point it at this venv's tila.
    copy = tmp_path / "tila-gateway.service"
    copy.write_text(unit.read_text().replace("/opt/tila/bin/tila", TILA[0]))
    done = subprocess.run([verify, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    # verify exits 0 even for settings it ignores; it names the file in each complaint.
    complaints = [x for x in (done.stdout + done.stderr).splitlines() if "tila-gateway.service" in x]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, eq, value = line.partition("=")
            assert eq and key == key.strip() and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            # systemd removes the quotes around a value (and so does a shell sourcing the file).
            values[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return values


def test_gateway_env_example_holds_options_the_gateway_accepts(
    tmp_path: Path, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tila.cli import build_parser

    example = env_file(SYSTEMD / "gateway.env.example")
    options = command_options("gateway")
    assert set(example) - options == set(), "variables no option reads"
    assert {"TILA_SITE", "TILA_ID", "TILA_LOCAL", "TILA_CENTRAL", "TILA_DATA_DIR"} <= set(example)

    # The values parse, with the files they name made here.
    password = tmp_path / "central.password"
    password.write_text(secret() + "\n")
    values = dict(example)
    values["TILA_SITE"] = "bundled"
    values["TILA_DATA_DIR"] = str(tmp_path / "gateway")
    values["TILA_CENTRAL"] = (
        values["TILA_CENTRAL"]
        .replace("/etc/tila/ca.pem", str(certs / "ca.pem"))
        .replace("/etc/tila/central.password", str(password))
    )
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    parser, _ = build_parser(["gateway"])
    args = parser.parse_args(["gateway"])
    assert args.central.tls and args.central.username == example["TILA_ID"]
    assert args.central.ca == str(certs / "ca.pem") and args.central.password_file == str(password)
    assert args.max_outbox_mb == int(example["TILA_MAX_OUTBOX_MB"])


def test_outbox_of_an_earlier_version_opens(tmp_path: Path) -> None:
    """An outbox file as 0.1.0 wrote it (its SCHEMA, no version number) opens with its events,
    sequence counter and dropped count: what an upgrade that keeps /var/lib/tila/gateway relies on."""
    from tila.gateway.outbox import Outbox

    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
        CREATE TABLE local_seen (n INTEGER PRIMARY KEY AUTOINCREMENT, mid INTEGER NOT NULL, digest BLOB NOT NULL);
        CREATE INDEX local_seen_mid ON local_seen (mid);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO outbox (seq, event) VALUES (41, '{"a": 1}'), (42, '{"a": 2}');
        INSERT INTO meta VALUES ('dropped', 7);
        """
    )
    db.commit()
    db.close()
    box = Outbox(path)
    try:
        assert (box.depth, box.dropped, box.last_seq()) == (2, 7, 42)
        assert [seq for seq, _ in box.peek(0, 10)] == [41, 42]
        assert box.append([{"a": 3}]) == [43]
    finally:
        box.close()


def test_scripts_test_installs_docker_compose() -> None:
    text = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "missing+=(docker-compose)" in text
