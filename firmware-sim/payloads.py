"""Readings → MQTT messages as the real devices' hubs publish them, and ground-truth records.

Pure: the caller passes the wall-clock time of publication, which is what ``last_seen`` and
``time`` carry (the pipeline runs on real time; the simulated clock only drives behaviour).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tila.sensors.formats.zigbee2mqtt import AVAILABILITY
from tila.sensors.site import Sensor

from .devices import COUNTER_FPORT, LoraUplink, Reading, ZigbeeAvailability, ZigbeeState

#: What the simulated ChirpStack says about itself (illustrative; the tenant id is ChirpStack v4's
#: default tenant's).
TENANT_ID = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
TENANT_NAME = "ChirpStack"
APPLICATION_NAME = "work20lab-people-counters"
DEVICE_PROFILE_ID = "0e4b1c3a-9f2d-4b7e-8a61-5c3d2e1f0a94"
DEVICE_PROFILE_NAME = "Milesight VS121 (EU868)"
GATEWAY_ID = "24e124fffef0a1b2"


@dataclass(slots=True, frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


def iso(t: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset and microseconds."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def render(reading: Reading, sensor: Sensor, wall: datetime) -> Message:
    if isinstance(reading, ZigbeeState):
        return Message(sensor.topic, _json(_zigbee_state(reading, wall)), retain=False)
    if isinstance(reading, ZigbeeAvailability):
        state = {"state": "online" if reading.online else "offline"}
        return Message(f"{sensor.topic}/{AVAILABILITY}", _json(state), retain=True)
    return Message(sensor.topic, _json(_uplink_event(reading, sensor, wall)), retain=False)


def truth_record(reading: Reading, wall: datetime) -> dict[str, Any]:
    """One line of the ground-truth file: the reading as published, at the payload's timestamp."""
    kind, value = reading.truth
    return {"time": iso(wall), "sensor": reading.sensor, "space": reading.space, "type": kind, "value": value}


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _zigbee_state(r: ZigbeeState, wall: datetime) -> dict[str, Any]:
    # Zigbee2MQTT's state of an Aqara RTCGQ11LM (``advanced.last_seen: ISO_8601``); illuminance,
    # device temperature and power-outage count left out.
    return {
        "battery": r.battery,
        "linkquality": r.linkquality,
        "occupancy": r.occupancy,
        "voltage": r.voltage,
        "last_seen": iso(wall),
    }


def _vs121_bytes(r: LoraUplink) -> bytes:
    """The VS121 FRMPayload: ``04 c9`` count, regions, region bitmask; periodic ``06 cd`` maximum."""
    data = bytes([0x04, 0xC9, min(r.count, 255), r.region_count]) + struct.pack(">H", r.region_mask)
    if r.count_max is not None:
        data += bytes([0x06, 0xCD, min(r.count_max, 255)])
    return data


def _vs121_object(r: LoraUplink) -> dict[str, float]:
    """What Milesight's VS121 codec decodes ``data`` into; ChirpStack's Struct makes numbers doubles."""
    obj: dict[str, float] = {
        "people_count_all": float(min(r.count, 255)),
        "region_count": float(r.region_count),
    }
    for i in range(r.region_count):
        obj[f"region_{i + 1}"] = float((r.region_mask >> i) & 1)
    if r.count_max is not None:
        obj["people_count_max"] = float(min(r.count_max, 255))
    return obj


def _uplink_event(r: LoraUplink, sensor: Sensor, wall: datetime) -> dict[str, Any]:
    parts = sensor.topic.split("/")
    # application/<application id>/device/<DevEUI>/event/up is ChirpStack's default event topic.
    default = len(parts) == 6 and parts[0] == "application" and parts[2] == "device"
    app_id = parts[1] if default else "00000000-0000-4000-8000-000000000000"
    dev_eui = parts[3] if default else hashlib.sha256(sensor.id.encode()).hexdigest()[:16]
    return {
        "deduplicationId": r.deduplication_id,
        "time": iso(wall),
        "deviceInfo": {
            "tenantId": TENANT_ID,
            "tenantName": TENANT_NAME,
            "applicationId": app_id,
            "applicationName": APPLICATION_NAME,
            "deviceProfileId": DEVICE_PROFILE_ID,
            "deviceProfileName": DEVICE_PROFILE_NAME,
            "deviceName": sensor.id,
            "devEui": dev_eui,
            "tags": {"space": sensor.space},
        },
        "devAddr": dev_eui[-8:],
        "adr": True,
        "dr": 5,
        "fCnt": r.f_cnt,
        "fPort": COUNTER_FPORT,
        "confirmed": False,
        "data": base64.b64encode(_vs121_bytes(r)).decode(),
        "object": _vs121_object(r),
        "rxInfo": [
            {
                "gatewayId": GATEWAY_ID,
                "uplinkId": r.uplink_id,
                "nsTime": iso(wall + timedelta(milliseconds=8)),
                "rssi": r.rssi,
                "snr": r.snr,
                "channel": r.uplink_id % 8,
                "location": {},
                "context": base64.b64encode(struct.pack(">I", r.uplink_id * 7919 % 2**32)).decode(),
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": 867100000 + 200000 * (r.uplink_id % 8),
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}},
        },
    }


def empty_reading(sensor: Sensor, when: datetime) -> tuple[str, bytes, dict[str, Any]]:
    """A message in which ``sensor`` says its space is empty, stamped ``when``: the topic, the payload
    and its ground-truth record. For tests and tools that close a simulated day by hand."""
    reading: Reading
    if sensor.format == "zigbee2mqtt":
        reading = ZigbeeState(when, sensor.id, sensor.space, False, 100, 3100, 120, "timeout")
    elif sensor.format == "chirpstack-milesight":
        dedup = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tila-sim:{sensor.id}:{iso(when)}"))
        reading = LoraUplink(when, sensor.id, sensor.space, 0, None, 4, 0, 0, -80, 9.0, dedup, 1)
    else:
        raise ValueError(f"no simulated device for format {sensor.format!r}")
    message = render(reading, sensor, when)
    return message.topic, message.payload, truth_record(reading, when)
