"""A real InfluxDB 1.x server for tests: ``influxd`` on free loopback ports, data in a temp dir.

Debian's ``influxdb`` package (1.6.7 on bookworm) is the only InfluxDB installable here;
scripts/test installs it when ``influxd`` is missing. The package may also start a system service
on port 8086: tests never use it, they start their own instance.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_influxd() -> None:
    """Fail (not skip) the test when influxd is missing: the InfluxDB store must be tested in CI."""
    if not os.access(INFLUXD, os.X_OK):
        pytest.fail(
            f"influxd is not installed ({INFLUXD} not found): run scripts/test, which installs "
            "Debian's influxdb package"
        )


def influxd_version() -> str:
    """``influxd version``'s line, e.g. ``InfluxDB v1.6.7~rc0 (git: unknown unknown)``."""
    out = subprocess.run([INFLUXD, "version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


class InfluxServer:
    """One ``influxd`` with its own config, meta, data and WAL dirs under ``workdir``.

    ``stop()`` and ``start()`` keep the ports and the data, so a test can simulate an outage.
    ``auth`` turns on 1.x authentication (create the first admin with ``query()``);
    ``max_row_limit`` makes the server truncate answers, as some deployments configure it;
    ``tls`` (certificate, key; see ``self_signed_cert``) serves HTTPS instead of HTTP.
    """

    def __init__(
        self, workdir: Path, auth: bool = False, max_row_limit: int = 0, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # The RPC service (backup/restore) listens too, on 127.0.0.1:8088 by default: a second
        # instance, or the package's own service, would collide there.
        self.rpc_port = free_port()
        self.conf = self.dir / "influxdb.conf"
        self.log = self.dir / "influxd.log"
        https = [
            "  https-enabled = true",
            f'  https-certificate = "{tls[0]}"' if tls else "",
            f'  https-private-key = "{tls[1]}"' if tls else "",
        ]
        lines = [
            # Debian's 1.6.7 calls upstream's `reporting-disabled` `reporting-enabled` (see
            # `influxd config`) and ignores unknown keys; its build reports nothing either way.
            "reporting-enabled = false",
            f'bind-address = "127.0.0.1:{self.rpc_port}"',
            "[meta]",
            f'  dir = "{self.dir}/meta"',
            "  logging-enabled = false",
            "[data]",
            f'  dir = "{self.dir}/data"',
            f'  wal-dir = "{self.dir}/wal"',
            "  query-log-enabled = false",
            "[monitor]",
            "  store-enabled = false",  # no _internal database written every 10 s
            "[http]",
            "  enabled = true",
            f'  bind-address = "127.0.0.1:{self.port}"',
            f"  auth-enabled = {'true' if auth else 'false'}",
            f"  max-row-limit = {max_row_limit}",
            *(https if tls else []),
            "  log-enabled = false",
            "  pprof-enabled = false",
            # UDP, Graphite, collectd and OpenTSDB listeners are off unless configured.
            "[continuous_queries]",
            "  enabled = false",
            "[subscriber]",
            "  enabled = false",
            "[logging]",
            '  level = "warn"',
            "  suppress-logo = true",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.tls = tls is not None
        # The helper's own requests trust the test certificate without verifying it.
        self._ctx = ssl._create_unverified_context() if tls else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        """The tila store URL of ``database`` on this server."""
        return f"{'influxdbs' if self.tls else 'influxdb'}://127.0.0.1:{self.port}/{database}"

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/ping", timeout=1, context=self._ctx) as r:
                return bool(r.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    def query(self, q: str, db: str = "", user: str = "", password: str = "") -> dict[str, object]:
        """POST an InfluxQL statement straight to the server (set-up and checks in tests)."""
        data = urllib.parse.urlencode({"q": q, **({"db": db} if db else {})}).encode()
        req = urllib.request.Request(f"{self.http_url}/query", data=data)
        if user:
            # 1.x reads u and p from the URL's query string only, not from a POST form: use Basic.
            cred = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {cred}")
        with urllib.request.urlopen(req, timeout=10, context=self._ctx) as r:
            doc: dict[str, object] = json.loads(r.read())
        return doc

    def start(self, timeout: float = 20.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [INFLUXD, "-config", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}: {self._log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping within {timeout} s: {self._log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-800:].strip() or "(no output)"


def self_signed_cert(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl, an ECDSA key: fast to make), valid a day."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@contextmanager
def running_influxd(
    workdir: Path, auth: bool = False, max_row_limit: int = 0, tls: tuple[Path, Path] | None = None
) -> Iterator[InfluxServer]:
    """Start an InfluxServer in ``workdir``, yield it, stop it afterwards (pytest.fail if missing)."""
    require_influxd()
    server = InfluxServer(workdir, auth=auth, max_row_limit=max_row_limit, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
