"""``tila bench``: the rows come out, measured and compared. No timing assertions: speed and memory
targets live in the benchmark's output, not in tests."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TILA
from influx_support import require_influxd

from tila.bench import GROUPS, Row

#: Every figure the gateway group measures (``--quick`` sizes); those with a same-run baseline.
GATEWAY_ROWS = {
    "outbox_append_3": True,
    "outbox_append_100": True,
    "outbox_append_500": True,
    "outbox_disk_bytes_3": True,
    "outbox_disk_bytes_100": True,
    "outbox_disk_bytes_500": True,
    "outbox_fill_backlog": False,
    "outbox_bytes_at_rest": True,
    "outbox_open_backlog": False,
    "outbox_drain_loop": False,
    "outbox_bytes_after_drain": True,
    "gateway_start_backlog": False,
    "gateway_drain_e2e": False,
    "gateway_rss_drain": False,
    "gateway_stop_backlog": False,
    "gateway_rss_lab": True,
    "gateway_cpu_lab": False,
    "gateway_disk_bytes_lab": False,
    "gateway_cpu_busy": False,
    "gateway_disk_bytes_busy": False,
    "gateway_delivered_lab": True,
}


def bench(args: list[str], tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The bench's temporary directories go under tmp, so the test can see that they are cleaned up.
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [*TILA, "bench", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.mark.integration
def test_gateway_bench_quick_prints_and_writes_every_row(tmp_path: Path, mosquitto_available: None) -> None:
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "gateway", "--quick", "--json", str(out)], work)
    assert res.returncode == 0, res.stdout + res.stderr

    doc = json.loads(out.read_text())
    assert doc["quick"] is True and doc["complete"] is True
    assert doc["groups"] == ["gateway"] and doc["failed"] == []
    assert doc["machine"]["cpus"] >= 1
    rows = {r["key"]: r for r in doc["rows"]}
    assert set(GATEWAY_ROWS) <= set(rows), set(GATEWAY_ROWS) - set(rows)
    for key, row in rows.items():
        assert row["group"] == "gateway"
        value = row["value"]
        assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
        # CPU time is counted in clock ticks: a short quiet phase may honestly read 0.
        assert value > 0 or (key.startswith("gateway_cpu_") and value == 0), (key, value)
        if GATEWAY_ROWS.get(key):
            assert row["baseline"] > 0 and row["baseline_figure"], key
            assert row["ratio"] == pytest.approx(value / row["baseline"]), key
        elif row["baseline"] is None:
            assert row["ratio"] is None, key
    # Not a speed figure: every event sent at lab load arrived, once.
    assert rows["gateway_delivered_lab"]["ratio"] == 1
    assert "0 duplicates" in rows["gateway_delivered_lab"]["note"]

    # The table: each figure on stdout, the outbox's ratio against plain SQLite beside it.
    assert "outbox append, 500 events/transaction" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if "outbox append, 500 events/transaction" in ln)
    assert line.rstrip().endswith("×")
    assert "baseline: plain SQLite table" in res.stdout
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


#: Every figure the aggregator group measures; those with a same-run baseline.
AGGREGATOR_ROWS = {
    "aggregator_events_live": True,
    "aggregator_batches_live": True,
    "aggregator_rss_lab": True,
    "aggregator_checkpoint_bytes_lab": False,
    "aggregator_events_backlog": True,
    "aggregator_batches_backlog": True,
    "aggregator_start_10k": False,
    "aggregator_rss_10k": True,
    "aggregator_checkpoint_bytes_10k": False,
    "aggregator_idle_disk_10k": True,
    "aggregator_idle_cpu_10k": False,
}

#: Every figure the store group measures; those with a same-run baseline (the arithmetic alone).
STORE_ROWS = {
    "metrics_alone_total": False,
    "metrics_alone_1d": False,
    "write_sqlite": False,
    "query_sqlite_total": True,
    "query_sqlite_1d": True,
    "write_influx": False,
    "query_influx_total": True,
    "query_influx_1d": True,
}


def check_rows(doc: dict, group: str, expected: dict[str, bool], may_be_zero: tuple[str, ...] = ()) -> dict:
    """The run is complete and every expected row is there, measured, with its baseline and ratio."""
    assert doc["quick"] is True and doc["complete"] is True
    assert doc["groups"] == [group] and doc["failed"] == []
    rows = {r["key"]: r for r in doc["rows"]}
    assert set(expected) <= set(rows), set(expected) - set(rows)
    for key, row in rows.items():
        assert row["group"] == group
        value = row["value"]
        assert isinstance(value, (int, float)) and math.isfinite(value), (key, value, row["note"])
        # CPU time is counted in clock ticks, arithmetic on small sizes may round to nothing.
        assert value > 0 or (key.startswith(may_be_zero) and value == 0), (key, value)
        if expected.get(key):
            assert row["baseline"] > 0 and row["baseline_figure"], key
            assert row["ratio"] == pytest.approx(value / row["baseline"]), key
        elif row["baseline"] is None:
            assert row["ratio"] is None, key
    return rows


@pytest.mark.integration
def test_aggregator_bench_quick_prints_and_writes_every_row(
    tmp_path: Path, mosquitto_available: None
) -> None:
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "aggregator", "--quick", "--json", str(out)], work, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = check_rows(json.loads(out.read_text()), "aggregator", AGGREGATOR_ROWS, ("aggregator_idle_",))
    # Every event reached the journal once; live events stayed inside the lateness window.
    for key in ("aggregator_events_live", "aggregator_events_backlog"):
        assert "duplicates 0" in rows[key]["note"], rows[key]["note"]
    assert "late 0," in rows["aggregator_events_live"]["note"]
    assert "baseline: bare paho subscriber" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if "aggregator, live events" in ln)
    assert line.rstrip().endswith("×")
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


@pytest.mark.integration
def test_store_bench_quick_prints_and_writes_every_row(tmp_path: Path) -> None:
    require_influxd()
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "store", "--quick", "--json", str(out)], work, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = check_rows(json.loads(out.read_text()), "store", STORE_ROWS, ("metrics_alone_",))
    # The quick sizes fit the InfluxDB write budget: both stores answer the same whole month.
    for store in ("sqlite", "influx"):
        assert "budget" not in rows[f"write_{store}"]["note"]
        assert "2025-01-01 to 2025-02-01" in rows[f"query_{store}_total"]["note"]
    assert "SQLite: utilisation, total by zone" in res.stdout
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


#: Every figure the scale group measures; those with a same-run baseline.
SCALE_ROWS = {
    "scale_start_half": False,
    "scale_idle_cpu_half": False,
    "scale_idle_rss_half": True,
    **{
        f"scale_{figure}_{step}": baseline
        for step in ("low", "mid", "high")
        for figure, baseline in (
            ("absorbed", True),
            ("lag_p50", False),
            ("lag_p95", False),
            ("cpu", False),
            ("rss", True),
            ("disk", False),
            ("mosquitto_cpu", False),
            ("mosquitto_rss", False),
        )
    },
    "scale_saturate_two": True,
    "scale_saturate_one": False,
}


@pytest.mark.integration
def test_scale_bench_quick_prints_and_writes_every_row(tmp_path: Path, mosquitto_available: None) -> None:
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "scale", "--quick", "--json", str(out)], work, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = check_rows(
        json.loads(out.read_text()),
        "scale",
        SCALE_ROWS,
        ("scale_idle_cpu_", "scale_cpu_", "scale_mosquitto_cpu_", "scale_disk_"),
    )
    # Every event reached a journal once, nothing quarantined; both configurations saw every site.
    for key in ("scale_saturate_two", "scale_saturate_one"):
        assert "duplicates 0, quarantined 0" in rows[key]["note"], rows[key]["note"]
    assert "one aggregator serving all 4 sites" in rows["scale_saturate_two"]["baseline_figure"]
    line = next(ln for ln in res.stdout.splitlines() if "two aggregators, 1k events/s offered" in ln)
    assert line.rstrip().endswith("×")
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


#: Every figure the backfill group measures; those with a same-run baseline.
BACKFILL_ROWS = {
    "backfill_one_process_events": True,
    "backfill_sqlite_events": True,
    "backfill_sqlite_days": False,
    "backfill_sqlite_seconds": True,
    "backfill_sqlite_cpu": True,
    "backfill_sqlite_rows": False,
    "backfill_sqlite_rss": False,
    "backfill_influx_events": True,
    "backfill_influx_days": True,
    "backfill_influx_rows": False,
    "backfill_influx_rss": True,
}


@pytest.mark.integration
def test_backfill_bench_quick_prints_and_writes_every_row(tmp_path: Path) -> None:
    require_influxd()
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "backfill", "--quick", "--json", str(out)], work, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = check_rows(json.loads(out.read_text()), "backfill", BACKFILL_ROWS)
    # Both stores got the same week: 5 open days × 52 quarters × the bundled site's 50 spaces.
    assert rows["backfill_sqlite_rows"]["value"] == rows["backfill_influx_rows"]["value"] == 13_000
    assert "baseline: the same simulation in one process" in res.stdout
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


#: Every figure the report group measures; those with a same-run baseline (the shorter period).
REPORT_ROWS = {
    "report_history_rows": False,
    "report_first_run": True,
    **{f"report_{step}": True for step in ("read", "compute", "charts", "write", "total")},
    "report_html_bytes": False,
}


def test_report_bench_quick_prints_and_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    work = tmp_path / "tmp"
    work.mkdir()
    res = bench(["--only", "report", "--quick", "--json", str(out)], work, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = check_rows(json.loads(out.read_text()), "report", REPORT_ROWS)
    # The four steps add up to the whole report.
    steps = sum(rows[f"report_{k}"]["value"] for k in ("read", "compute", "charts", "write"))
    assert steps == pytest.approx(rows["report_total"]["value"])
    assert "share of the time: read" in rows["report_total"]["note"]
    assert "report two months: the whole report" in res.stdout
    assert not list(work.glob("tila-bench-*")), "temporary directories left behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "nope"], "no benchmark group 'nope'"),
        (["--json", "/nonexistent-dir/x.json"], "--json: no such directory"),
    ],
)
def test_bad_options_end_with_exit_2_and_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = bench(args, tmp_path, timeout=20)
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_ratio_is_value_over_same_run_baseline() -> None:
    assert Row("k", "f", 50.0, "events/s", 200.0, "base").ratio == 0.25
    assert Row("k", "f", 50.0, "events/s").ratio is None
    assert Row("k", "f", None, "events/s", 200.0, "base").ratio is None
    assert Row("k", "f", 1.0, "s", 1.0, "b").to_dict("g")["ratio"] == 1.0
    assert "gateway" in GROUPS
    assert {"aggregator", "store", "scale"} <= set(GROUPS)
