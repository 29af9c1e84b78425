"""``tila bench``: the benchmarks, printing figures and side-by-side ratios.

Speed and memory targets live here, not in timed tests. Each group measures its figures and, where a
bare number says little, a baseline measured in the same run on the same machine and disk, and the
ratio of the two. ``--quick`` shrinks the sizes so that everything runs in seconds (the tests use
it); ``--json FILE`` writes the rows for tracking from run to run.

A group is a module with ``run(ctx: Context) -> Iterable[Row]``, registered in :data:`GROUPS`: adding
one is adding a line there. Rows are printed as they come, so a long run shows its progress and a
group that fails keeps what it measured. Only the chosen groups are imported (the gateway's needs no
web stack). This module also holds what several groups need: a Mosquitto on a free loopback port,
``tila`` subcommands as processes, and figures read from ``/proc``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .cli import UsageError

log = logging.getLogger(__name__)

#: Group → (module with ``run(ctx) -> Iterable[Row]``, what it measures). Adding a group is one line.
GROUPS: dict[str, tuple[str, str]] = {
    "gateway": ("tila.gateway.bench", "durable outbox, backlog drain, disk writes, gateway memory"),
    "aggregator": ("tila.aggregator.bench", "events/s against a bare subscriber, memory at 10k spaces"),
    "store": ("tila.store.bench", "utilisation over a year × 500 spaces in SQLite and InfluxDB"),
    "api": ("tila.api.bench", "sensor-to-browser latency, SSE fan-out to 1000 clients, /v1/spaces req/s"),
    "scale": ("tila.aggregator.scale_bench", "20,000 sensors, 100 sites, one Mosquitto, two aggregators"),
    "backfill": ("tila.sim.bench", "a year of simulated history into SQLite and InfluxDB: events/s, RSS"),
    "report": ("tila.report.bench", "a year of the bundled site: store read, computation, charts, writing"),
}


# ------------------------------------------------------------------------------------------ rows


@dataclass(slots=True, frozen=True)
class Row:
    """One measured figure; with a baseline measured in the same run, the ratio value ÷ baseline."""

    #: Stable identifier for tracking across runs (``outbox_append_500``); the figure may be reworded.
    key: str
    figure: str
    #: None when the figure could not be measured here (``note`` says why).
    value: float | None
    unit: str
    baseline: float | None = None
    #: What the baseline is, in the same unit as the value.
    baseline_figure: str = ""
    #: Sizes used, how it was measured, anything a reader needs to trust the number.
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def to_dict(self, group: str) -> dict[str, Any]:
        return {
            "group": group,
            "key": self.key,
            "figure": self.figure,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_figure": self.baseline_figure or None,
            "ratio": self.ratio,
            "note": self.note or None,
        }


class StoppedError(Exception):
    """SIGTERM or SIGINT arrived during a benchmark."""


class UnavailableError(Exception):
    """Something a figure needs is missing on this machine (e.g. Mosquitto); the figure is skipped."""


# ---------------------------------------------------------------------------------------- context


@dataclass(slots=True)
class Context:
    """What a group gets: the run's size, its own temporary directory, the stop event, and helpers."""

    quick: bool
    workdir: Path
    stop: threading.Event

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def check(self) -> None:
        """Call between steps and every so often inside long loops."""
        if self.stop.is_set():
            raise StoppedError

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise StoppedError

    @contextlib.contextmanager
    def broker(self, name: str = "mosquitto") -> Iterator[Mosquitto]:
        """A Mosquitto on a free loopback port in this group's directory, stopped afterwards."""
        m = Mosquitto(self.workdir / name)
        m.start()
        try:
            yield m
        finally:
            m.stop()

    @contextlib.contextmanager
    def tila(self, name: str, args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
        """``tila ARGS`` as its own process (output in ``<workdir>/<name>.log``), stopped afterwards."""
        logfile = self.workdir / f"{name}.log"
        with open(logfile, "ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tila", *args], stdout=fh, stderr=subprocess.STDOUT
            )
            try:
                yield proc
            finally:
                stop_process(proc, timeout=10.0)

    def expect_alive(self, proc: subprocess.Popen[bytes], name: str) -> None:
        """Raise with the end of its log when a process this group started has died."""
        if proc.poll() is not None:
            tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{tail}")

    def wait_until(self, predicate: Any, timeout: float, what: str, interval: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.sleep(interval)


# -------------------------------------------------------------------------------------- processes

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """A Mosquitto on a free loopback port, configured like tila's brokers (deploy/mosquitto/mosquitto.conf)."""

    def __init__(self, workdir: Path) -> None:
        import shutil

        exe = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)
        if exe is None:
            raise UnavailableError("mosquitto is not installed (apt install mosquitto)")
        self.exe = exe
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Nothing to keep across restarts here; without persistence the broker writes nothing
            # to the disk the outbox figures are measured on.
            "persistence false\n"
            # As tila's brokers: keep every QoS 1 message for a client that is behind (the default
            # keeps 1000 and drops the rest), and as many in flight as deploy/mosquitto/mosquitto.conf.
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
            f"log_dest file {self.dir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto did not start: {err.strip()[:300]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=5.0)
            if self.proc.stderr:
                self.proc.stderr.close()
        self.proc = None


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> float:
    """SIGTERM, then SIGKILL after ``timeout``; returns the seconds it took to exit."""
    start = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not exit within %.0f s of SIGTERM; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()
    return time.monotonic() - start


def proc_status_kib(pid: int | str, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``: peak resident set; ``VmRSS``: now)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def proc_io(pid: int | str = "self") -> dict[str, int]:
    """``/proc/<pid>/io``: ``write_bytes`` (sent towards the disk, counted when pages are dirtied),
    ``wchar`` (passed to write(2)), and the rest."""
    with open(f"/proc/{pid}/io") as fh:
        return {k: int(v) for k, _, v in (line.partition(": ") for line in fh if line.strip())}


def proc_cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (proc(5)), so 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def filesystem_of(path: Path) -> str:
    """The filesystem type holding ``path``, from /proc/mounts (``?`` where that is not readable)."""
    best, fstype = "", "?"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    mount = parts[1].replace("\\040", " ")
                    inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
                    if inside and len(mount) > len(best):
                        best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


# ------------------------------------------------------------------------------------------ command


def _group_names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    for n in names:
        if n not in GROUPS:
            raise argparse.ArgumentTypeError(f"no benchmark group {n!r} (groups: {', '.join(GROUPS)})")
    return names


def _chosen(only: Any) -> list[str]:
    """The groups to run: ``--only a b,c`` parses as [[a], [b, c]]; ``TILA_ONLY=a,b`` as [a, b]."""
    if not only:
        return list(GROUPS)
    names: list[str] = []
    for value in only:
        names.extend(_group_names(value) if isinstance(value, str) else value)
    return list(dict.fromkeys(names))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        nargs="+",
        type=_group_names,
        metavar="NAME",
        help=f"run only these groups ({', '.join(GROUPS)}); default: all",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: the whole run takes seconds")
    p.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")


def machine() -> dict[str, Any]:
    tmp = Path(tempfile.gettempdir()).resolve()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "tempdir": str(tmp),
        "tempdir_fs": filesystem_of(tmp),
    }


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


FIGURE_WIDTH = 50


def _print_row(row: Row) -> None:
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
    baseline = _fmt(row.baseline) if row.baseline is not None else ""
    print(
        f"  {row.figure:<{FIGURE_WIDTH}} {_fmt(row.value):>10} {row.unit:<10} {baseline:>10} {ratio:>7}".rstrip()
    )
    if row.baseline is not None and row.baseline_figure:
        print(f"      baseline: {row.baseline_figure}")
    if row.note:
        print(f"      {row.note}")
    sys.stdout.flush()


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    names = _chosen(args.only)
    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--json: no such directory: {out.parent}")

    info = machine()
    started = datetime.now(UTC)
    print(
        f"tila bench {__version__}{' --quick' if args.quick else ''}: {info['machine']}, {info['cpus']} CPUs,"
        f" Python {info['python']}, SQLite {info['sqlite']}, temp dir {info['tempdir']} ({info['tempdir_fs']})"
    )
    print("baselines are measured in the same run, on the same machine and disk; ratio = value ÷ baseline")
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    stopped = False
    for name in names:
        modname, summary = GROUPS[name]
        print(f"\n{name}: {summary}")
        print(f"  {'figure':<{FIGURE_WIDTH}} {'value':>10} {'unit':<10} {'baseline':>10} {'ratio':>7}")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"tila-bench-{name}-", ignore_cleanup_errors=True) as tmp:
            ctx = Context(quick=args.quick, workdir=Path(tmp), stop=stop)
            try:
                module = importlib.import_module(modname)
                for row in module.run(ctx):
                    _print_row(row)
                    results.append(row.to_dict(name))
            except StoppedError:
                stopped = True
            except Exception:
                log.exception("benchmark group %s failed", name)
                failed.append(name)
        print(f"  ({name}: {time.monotonic() - t0:.0f} s)")
        if stopped:
            print("\nstopped before the end; the rows above were measured", file=sys.stderr)
            break

    if out is not None:
        doc = {
            "tila": __version__,
            "started": started.isoformat(),
            "quick": bool(args.quick),
            "machine": info,
            "groups": names,
            "failed": failed,
            "complete": not stopped and not failed,
            "rows": results,
        }
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or stopped else 0
