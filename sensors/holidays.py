"""Public-holiday calendars: the dates a site stays closed whatever its weekday's hours say.

Computed, not looked up: Finland's holidays follow fixed dates, Easter and "the Saturday between"
rules (Act on Public Holidays and the Church Act), so a few lines cover every year without a data
file or a dependency to keep current. A calendar is a function from a year to ``{date: name}``;
adding a country is adding one to :data:`CALENDARS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _saturday_from(first: date) -> date:
    """The Saturday in the seven days starting at ``first``."""
    return first + timedelta(days=(5 - first.weekday()) % 7)


def finnish(year: int) -> dict[date, str]:
    """Finland's public holidays, plus Midsummer Eve and Christmas Eve, which the Lab keeps closed.

    Midsummer Eve and Christmas Eve are not public holidays in law but are days off by custom and
    collective agreements; Whit Sunday is one (a Sunday, so it closes only a site open on Sundays).
    """
    e = easter(year)
    midsummer = _saturday_from(date(year, 6, 20))
    out = {
        date(year, 1, 1): "New Year's Day (uudenvuodenpäivä)",
        date(year, 1, 6): "Epiphany (loppiainen)",
        e - timedelta(days=2): "Good Friday (pitkäperjantai)",
        e: "Easter Sunday (pääsiäispäivä)",
        e + timedelta(days=1): "Easter Monday (2. pääsiäispäivä)",
        date(year, 5, 1): "May Day (vappu)",
        e + timedelta(days=39): "Ascension Day (helatorstai)",
        e + timedelta(days=49): "Whit Sunday (helluntaipäivä)",
        midsummer - timedelta(days=1): "Midsummer Eve (juhannusaatto)",
        midsummer: "Midsummer Day (juhannuspäivä)",
        _saturday_from(date(year, 10, 31)): "All Saints' Day (pyhäinpäivä)",
        date(year, 12, 6): "Independence Day (itsenäisyyspäivä)",
        date(year, 12, 24): "Christmas Eve (jouluaatto)",
        date(year, 12, 25): "Christmas Day (joulupäivä)",
        date(year, 12, 26): "St Stephen's Day (tapaninpäivä)",
    }
    return dict(sorted(out.items()))


#: Calendar name (as written in the site file's ``holidays``) → holidays of a year.
CALENDARS: dict[str, Callable[[int], dict[date, str]]] = {"FI": finnish}


@lru_cache(maxsize=256)
def holidays_in(calendar: str, year: int) -> Mapping[date, str]:
    """The holidays of ``calendar`` in ``year``, read-only (memoised: opening hours ask every day)."""
    return MappingProxyType(CALENDARS[calendar](year))
