"""Shared fixtures: real Mosquitto brokers on free loopback ports, tila processes, log checks."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
#: The installed console script beside this interpreter (as operators run it).
_SCRIPT = Path(sys.executable).parent / "tila"
TILA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tila"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


class Mosquitto:
    """A real Mosquitto on a free loopback port, with persistence so a restart keeps sessions."""

    def __init__(self, workdir: Path, extra: str = "") -> None:
        self.port = free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            # Mosquitto keeps at most 1000 QoS 1 messages for an offline persistent client by
            # default and drops the rest: tila's brokers keep them all.
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
            # Started as root (CI), Mosquitto would switch to the 'mosquitto' user, which cannot
            # write its persistence file and log into the test's directory: sessions and queued
            # messages would then not survive a restart.
            "user root\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            err = (
                self.proc.stderr.read().decode() if self.proc.poll() is not None and self.proc.stderr else ""
            )
            raise RuntimeError(f"mosquitto did not start: {err}") from None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def mosquitto_available() -> None:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run scripts/test, which installs it")


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory: pytest.TempPathFactory, mosquitto_available: None) -> Iterator[Mosquitto]:
    """One Mosquitto for the whole session; tests sharing it use their own topics or site ids."""
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto-shared"))
    m.start()
    yield m
    m.stop()


@pytest.fixture
def mosquitto(tmp_path: Path, mosquitto_available: None) -> Iterator[callable]:  # type: ignore[valid-type]
    """Factory: ``mosquitto("name")`` starts a broker and returns it; all are stopped afterwards."""
    brokers: list[Mosquitto] = []

    def start(name: str = "broker", extra: str = "") -> Mosquitto:
        m = Mosquitto(tmp_path / f"mosquitto-{name}", extra)
        m.start()
        brokers.append(m)
        return m

    yield start
    for m in brokers:
        m.stop()


class Proc:
    """A ``tila`` subcommand as its own process, output to a log file."""

    def __init__(self, name: str, args: list[str], logdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.log = logdir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*TILA, *self.args], stdout=self._fh, stderr=subprocess.STDOUT, env=self.env
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self._fh.close()
        self.proc = None
        return rc

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def tila_proc(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Factory: ``tila_proc("gateway", [...args])`` starts ``python -m tila ...``; stopped afterwards."""
    procs: list[Proc] = []

    def start(name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        p = Proc(name, args, tmp_path, env).start()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def wait_for(predicate: callable, timeout: float, interval: float = 0.1, what: str = "condition") -> object:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@pytest.fixture(autouse=True)
def _fail_on_logged_exceptions(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """A test whose callbacks logged an exception fails, even if the test itself passed."""
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("allow_logged_exceptions"):
        return
    bad = [r for r in caplog.get_records("call") if r.exc_info and r.name.startswith("tila")]
    if bad:
        pytest.fail(
            "exception logged during the test: " + "; ".join(f"{r.name}: {r.getMessage()}" for r in bad[:3])
        )
