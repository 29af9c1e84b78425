"""Tokens, the ``tila api`` arguments and ``run`` as the command line drives it."""

from __future__ import annotations

import logging
import re
import socket
import threading
from pathlib import Path

import httpx
import pytest

from tila.api.auth import TokenError, Tokens
from tila.api.service import add_arguments, run
from tila.cli import Parser, UsageError

SECRET = "s3cr3t-T0KEN"


def test_tokens_grant_scopes_and_admin_implies_the_others() -> None:
    t = Tokens.parse(f" host:h1 , analyst:a1,admin:{SECRET},host:shared,analyst:shared")
    assert t.scopes("h1") == {"host"}
    assert t.scopes("a1") == {"analyst"}
    assert t.scopes(SECRET) == {"host", "analyst", "booking", "admin"}
    assert t.scopes("shared") == {"host", "analyst"}
    assert t.scopes("nope") == frozenset()
    assert t.scopes("") == frozenset()
    assert Tokens.parse("host:a:b:c").scopes("a:b:c") == {"host"}  # split at the first colon only
    assert not Tokens.parse("") and not Tokens.parse("  ")
    assert SECRET not in repr(t) and SECRET not in str(t)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (SECRET, "not scope:token"),
        (f"root:{SECRET}", "unknown scope 'root'"),
        ("host:", "empty token"),
        (f"host:{SECRET},,analyst:x", "item 2 is empty"),
        (f"host:{SECRET} x", "spaces"),
        (f"host:{SECRET}ä", "non-ASCII"),
    ],
)
def test_bad_tokens_are_one_line_without_the_token(spec: str, words: str) -> None:
    with pytest.raises(TokenError) as err:
        Tokens.parse(spec)
    msg = str(err.value)
    assert words in msg
    assert SECRET not in msg and "\n" not in msg


def parser() -> Parser:
    p = Parser(prog="tila api")
    add_arguments(p)
    return p


def site_file(tmp_path: Path) -> str:
    path = tmp_path / "site.toml"
    path.write_text(
        '[site]\nid = "mini"\nname = "Mini"\ntimezone = "Europe/Helsinki"\n'
        'opening_hours = { mon = "07:00-20:00" }\n'
        '[[zones]]\nid = "z"\nname = { fi = "Vyöhyke", sv = "Zon", en = "Zone" }\n'
        '[[spaces]]\nid = "desk-01"\nkind = "desk"\nzone = "z"\ncapacity = 1\n'
    )
    return str(path)


def base_args(tmp_path: Path) -> list[str]:
    return [
        "--site", site_file(tmp_path),
        "--mqtt", "mqtt://127.0.0.1:1",
        "--store", f"sqlite:///{tmp_path}/tila.db",
    ]  # fmt: skip


def test_a_bad_tokens_option_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args([*base_args(tmp_path), "--tokens", f"superuser:{SECRET}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scope 'superuser'" in err
    assert SECRET not in err


def test_a_bad_tila_tokens_environment_exits_2_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TILA_TOKENS", SECRET)
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(base_args(tmp_path))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--tokens" in err and SECRET not in err


def test_defaults(tmp_path: Path) -> None:
    args = parser().parse_args(base_args(tmp_path))
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert isinstance(args.tokens, Tokens) and not args.tokens


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = parser().parse_args([*base_args(tmp_path), "--port", str(port)])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            run(args, threading.Event())


def test_run_serves_until_stop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = parser().parse_args([*base_args(tmp_path), "--port", "0", "--tokens", "analyst:a"])
    stop = threading.Event()
    result: list[int] = []
    caplog.set_level(logging.INFO, logger="tila.api.service")
    t = threading.Thread(target=lambda: result.append(run(args, stop)), daemon=True)
    t.start()

    def url() -> str | None:
        for r in caplog.records:
            m = re.search(r"API listening on (http://127\.0\.0\.1:\d+)", r.getMessage())
            if m:
                return m[1]
        return None

    for _ in range(200):
        if url():
            break
        t.join(0.05)
    base = url()
    assert base, "run() did not log its URL"
    for _ in range(100):  # the socket listens at once; uvicorn answers after its startup
        try:
            r = httpx.get(base + "/v1/spaces", timeout=2)
            break
        except httpx.ConnectError:
            t.join(0.05)
    assert r.status_code == 200 and r.json()[0]["id"] == "desk-01"
    # the broker at port 1 is not there: degraded, not dead
    assert httpx.get(base + "/healthz", timeout=2).json() == {
        "status": "degraded",
        "mqtt": False,
        "store": True,
        "aggregators": {},
    }
    stop.set()
    t.join(5)
    assert not t.is_alive() and result == [0]
