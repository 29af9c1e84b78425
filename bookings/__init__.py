"""Bookings: iCalendar import, comparison with measured occupancy, availability."""
