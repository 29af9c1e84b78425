"""Message formats: one module each, found by this registry.

A format module defines ``FORMAT``, a :class:`~tila.sensors.formats.base.Format` whose ``decode(topic,
payload, ctx)`` returns canonical events. Adding a format is adding a module here; nothing else
changes. Site files name the format of each sensor.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import DecodeContext, DecodeError, Format

__all__ = ["FORMATS", "DecodeContext", "DecodeError", "Format", "get_format"]


def _discover() -> dict[str, Format]:
    found: dict[str, Format] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        fmt = getattr(module, "FORMAT", None)
        if isinstance(fmt, Format):
            if fmt.name in found:
                raise RuntimeError(f"two formats are named {fmt.name!r}")
            found[fmt.name] = fmt
    return found


FORMATS: dict[str, Format] = _discover()


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r} (known: {', '.join(sorted(FORMATS))})") from None
