"""Simulated sensor firmware (``tila sim``): the site's people, its devices, and their messages.

- :mod:`.behaviour`: who is where, when (pure);
- :mod:`.devices`: what each device sends, and when, given that (pure);
- :mod:`.payloads`: the MQTT messages and ground-truth records (pure);
- :mod:`.simulator`: :class:`Simulator`, publishing it all on a real-time clock;
- :mod:`.backfill`: history written straight into a store (``tila sim --backfill``);
- :mod:`.bookings`: simulated bookings of the rooms and the event hall (pure);
- :mod:`.bench`: the ``backfill`` benchmark group;
- :mod:`.service`: the ``tila sim`` command.
"""

from .behaviour import Behaviour
from .simulator import Simulator

__all__ = ["Behaviour", "Simulator"]
