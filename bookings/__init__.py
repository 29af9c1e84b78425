"""Bookings of the site's rooms: iCalendar import, storage, comparison with measured occupancy, live
no-shows and availability.

- :mod:`.model`: :class:`~.model.Booking` and :class:`~.model.ImportResult` (no personal data);
- :mod:`.ical`: files and feeds → bookings, with counted skips;
- :mod:`.db`: ``bookings.db`` in the API's data directory;
- :mod:`.compare`: bookings against the store's buckets (:func:`~.compare.compare`), and
  :func:`~.compare.load` for the report;
- :mod:`.availability` and :mod:`.monitor`: what the API answers and decides live;
- :mod:`.cli`: ``tila bookings import``.
"""
