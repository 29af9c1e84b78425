"""Site files: the contract's minimal file loads; every kind of mistake is one clear line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tila.sensors.site import SiteError, load_site, parse_site

MINIMAL = """
[site]
id = "work20lab"
name = "Työ 2.0 Lab"
timezone = "Europe/Helsinki"
opening_hours = { mon = "07:00-20:00", tue = "07:00-20:00", wed = "07:00-20:00", thu = "07:00-20:00", fri = "07:00-20:00" }

[[zones]]
id = "open-office"
name = { fi = "Avotila", sv = "Öppet kontor", en = "Open office" }

[[spaces]]
id = "desk-01"
kind = "desk"            # desk | room | booth | event
zone = "open-office"
capacity = 1

[[sensors]]
id = "desk-01-pir"
space = "desk-01"
format = "zigbee2mqtt"   # the decoder to use
topic = "zigbee2mqtt/desk-01-pir"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_contract_minimal_file_loads(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, MINIMAL))
    assert site.id == "work20lab"
    assert site.name == {"en": "Työ 2.0 Lab"}
    assert site.zone("open-office").label("sv") == "Öppet kontor"
    assert site.space("desk-01").capacity == 1
    assert site.sensor_by_topic("zigbee2mqtt/desk-01-pir").id == "desk-01-pir"
    assert site.opening_hours[0] == ((7 * 60, 20 * 60),)
    assert 5 not in site.opening_hours


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('zone = "open-office"', 'zone = "nowhere"', "spaces[0].zone", "unknown zone 'nowhere'"),
        ('space = "desk-01"', 'space = "desk-99"', "sensors[0].space", "unknown space 'desk-99'"),
        ('format = "zigbee2mqtt"', 'format = "x10"', "sensors[0].format", "unknown format 'x10'"),
        ('mon = "07:00-20:00"', 'mon = "7-20"', "site.opening_hours.mon", 'must be "HH:MM-HH:MM"'),
        ('mon = "07:00-20:00"', 'mon = "20:00-07:00"', "site.opening_hours.mon", "closes before it opens"),
        ('mon = "07:00-20:00"', 'mon = "07:00-25:00"', "site.opening_hours.mon", "not a time of day"),
        ('mon = "07:00-20:00"', 'mun = "07:00-20:00"', "site.opening_hours.mun", "unknown day"),
        ('kind = "desk"', 'kind = "sofa"', "spaces[0].kind", "must be one of"),
        ("capacity = 1", "capacity = 0", "spaces[0].capacity", "at least 1"),
        ("capacity = 1", 'capacity = "one"', "spaces[0].capacity", "whole number"),
        ('timezone = "Europe/Helsinki"', 'timezone = "Mars/Olympus"', "site.timezone", "unknown time zone"),
        (
            'topic = "zigbee2mqtt/desk-01-pir"',
            'topic = "zigbee2mqtt/#"',
            "sensors[0].topic",
            "without wildcards",
        ),
        ('id = "desk-01-pir"', 'id = "Desk 01"', "sensors[0].id", "must be an id"),
    ],
)
def test_mistakes_name_file_key_and_problem(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(SiteError) as info:
        load_site(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: {key}: ")
    assert problem in line


def test_duplicate_ids(tmp_path: Path) -> None:
    dup_space = MINIMAL + '\n[[spaces]]\nid = "desk-01"\nkind = "desk"\nzone = "open-office"\n'
    with pytest.raises(SiteError, match=r"spaces\[1\]\.id: duplicate space id 'desk-01'"):
        load_site(write(tmp_path, dup_space))
    dup_zone = MINIMAL.replace("[[spaces]]", '[[zones]]\nid = "open-office"\n\n[[spaces]]', 1)
    with pytest.raises(SiteError, match=r"zones\[1\]\.id: duplicate zone id"):
        load_site(write(tmp_path, dup_zone))
    dup_topic = (
        MINIMAL
        + '\n[[sensors]]\nid = "x"\nspace = "desk-01"\nformat = "zigbee2mqtt"\ntopic = "zigbee2mqtt/desk-01-pir"\n'
    )
    with pytest.raises(SiteError, match=r"sensors\[1\]\.topic: topic .* is also sensor 'desk-01-pir'"):
        load_site(write(tmp_path, dup_topic))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="cannot read"):
        load_site(tmp_path / "missing.toml")
    with pytest.raises(SiteError, match="not valid TOML"):
        load_site(write(tmp_path, "[site\nid="))
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[site]")
    with pytest.raises(SiteError, match="not UTF-8"):
        load_site(bad)
    with pytest.raises(SiteError, match=r"site: missing \[site\] table"):
        load_site(write(tmp_path, "[[zones]]\nid='a'\n"))


def test_open_intervals_follow_local_time_across_dst() -> None:
    doc = {
        "site": {
            "id": "s",
            "timezone": "Europe/Helsinki",
            "opening_hours": {d: "07:00-20:00" for d in ("sat", "sun")},
        },
    }
    site = parse_site(doc)
    # Sunday 2026-03-29: clocks go from 03:00 to 04:00 in Helsinki; 07–20 is still 13 hours.
    day = site.open_intervals(datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert day == [(datetime(2026, 3, 29, 4, tzinfo=UTC), datetime(2026, 3, 29, 17, tzinfo=UTC))]
    # Saturday before: still winter time (UTC+2).
    sat = site.open_intervals(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert sat == [(datetime(2026, 3, 28, 5, tzinfo=UTC), datetime(2026, 3, 28, 12, tzinfo=UTC))]


def test_whole_day_and_split_hours() -> None:
    site = parse_site(
        {
            "site": {
                "id": "s",
                "timezone": "UTC",
                "opening_hours": {"mon": "00:00-24:00", "tue": "08:00-12:00,13:00-17:00"},
            }
        }
    )
    mon = datetime(2026, 11, 23, tzinfo=UTC)
    assert site.open_seconds(mon, datetime(2026, 11, 25, tzinfo=UTC)) == 24 * 3600 + 8 * 3600
