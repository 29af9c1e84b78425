"""The report's words in Finnish, Swedish and English, and numbers written the way each reads them.

The CSV files are language-neutral (ids, ISO dates, dot decimals); only the HTML and the charts'
labels are translated. Finnish and Swedish write a decimal comma and a space before the per cent
sign (Kielitoimisto, Institutet för de inhemska språken); English writes neither.
"""

from __future__ import annotations

from datetime import date

LANGS = ("fi", "sv", "en")
#: The steering group that reads the report works in Finnish.
DEFAULT_LANG = "fi"

KIND_NAMES = {
    "fi": {
        "desk": "työpisteet",
        "room": "neuvotteluhuoneet",
        "booth": "puhelinkopit",
        "event": "tapahtumatilat",
    },
    "sv": {"desk": "arbetsplatser", "room": "mötesrum", "booth": "telefonbås", "event": "evenemangslokaler"},
    "en": {"desk": "desks", "room": "meeting rooms", "booth": "phone booths", "event": "event spaces"},
}
WEEKDAYS = {
    "fi": ("ma", "ti", "ke", "to", "pe", "la", "su"),
    "sv": ("mån", "tis", "ons", "tors", "fre", "lör", "sön"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}

T: dict[str, dict[str, str]] = {
    "title": {
        "fi": "Jatkoarviointi: tilojen käyttö",
        "sv": "Fortsättningsbedömning: lokalernas användning",
        "en": "Continuation assessment: use of the space",
    },
    "period": {"fi": "Ajanjakso", "sv": "Period", "en": "Period"},
    "period_value": {
        "fi": "{first} – {last} ({days} päivää, joista {open_days} aukiolopäivää)",
        "sv": "{first} – {last} ({days} dagar, varav {open_days} öppetdagar)",
        "en": "{first} – {last} ({days} days, {open_days} of them open)",
    },
    "site": {"fi": "Kohde", "sv": "Plats", "en": "Site"},
    "site_value": {
        "fi": "{name}: {spaces} tilaa, {seats} paikkaa",
        "sv": "{name}: {spaces} utrymmen, {seats} platser",
        "en": "{name}: {spaces} spaces, {seats} seats",
    },
    "made_with": {
        "fi": "Laadittu: tila {version}",
        "sv": "Framställd med tila {version}",
        "en": "Made with tila {version}",
    },
    "findings": {"fi": "Keskeiset havainnot", "sv": "Viktigaste resultat", "en": "Key findings"},
    "method": {"fi": "Menetelmä", "sv": "Metod", "en": "Method"},
    "method_text": {
        "fi": (
            "Luvut perustuvat läsnäoloantureihin: työpisteissä ja puhelinkopeissa liiketunnistimet, "
            "huoneissa ja tapahtumatilassa henkilölaskurit. Jokaisen tilan tila (vapaa, käytössä, "
            "tuntematon) ja henkilömäärä kootaan 15 minuutin jaksoiksi. Aukioloajat, Suomen "
            "yleiset vapaapäivät sekä kohteen omat suljetut ja avoimet päivät tulevat kohdetiedostosta "
            "({source}); vain aukioloaika lasketaan. Päivämäärät ovat kohteen paikallista aikaa "
            "({tz}). Henkilötietoja ei käsitellä: vain tilojen käyttöaste."
        ),
        "sv": (
            "Siffrorna bygger på närvarosensorer: rörelsesensorer vid arbetsplatser och i telefonbås, "
            "personräknare i mötesrum och evenemangslokal. Varje utrymmes tillstånd (ledigt, upptaget, "
            "okänt) och antal personer summeras i perioder om 15 minuter. Öppettider, Finlands "
            "allmänna helgdagar och platsens egna stängda och öppna dagar kommer från platsfilen "
            "({source}); endast öppettid räknas. Datum anges i platsens lokala tid ({tz}). Inga "
            "personuppgifter behandlas: endast utrymmenas användning."
        ),
        "en": (
            "The figures come from occupancy sensors: motion sensors at desks and in phone booths, "
            "people counters in the meeting rooms and the event space. Each space's state (free, "
            "occupied, unknown) and head count are summed into 15-minute buckets. Opening hours, "
            "Finnish public holidays and the site's own closed and open dates come from the site file "
            "({source}); only open time counts. Dates are the site's local time ({tz}). No personal "
            "data is processed: occupancy of spaces only."
        ),
    },
    "definitions": {"fi": "Määritelmät", "sv": "Definitioner", "en": "Definitions"},
    "def_source": {
        "fi": "UK Higher Education Space Management Group -mittarit:",
        "sv": "Mått enligt UK Higher Education Space Management Group:",
        "en": "Measures of the UK Higher Education Space Management Group:",
    },
    "def_f": {
        "fi": "käyttöaste F (frequency) = käyttöaika aukioloaikana ÷ aukioloaika",
        "sv": "frekvens F = upptagen tid inom öppettid ÷ öppettid",
        "en": "frequency F = occupied seconds within opening hours ÷ open seconds",
    },
    "def_o": {
        "fi": "täyttöaste O (occupancy) = keskimääräinen henkilömäärä ÷ paikkamäärä tilan ollessa käytössä",
        "sv": "beläggning O = genomsnittligt antal personer ÷ antal platser medan upptaget",
        "en": "occupancy O = mean head count ÷ capacity while occupied",
    },
    "def_u": {
        "fi": "hyödyntämisaste U (utilisation) = F × O (työpisteellä U = F)",
        "sv": "utnyttjande U = F × O (för en arbetsplats U = F)",
        "en": "utilisation U = F × O (for a desk, U = F)",
    },
    "def_c": {
        "fi": "kattavuus = osuus aukioloajasta, jolta anturidataa on",
        "sv": "täckning = andel av öppettiden med sensordata",
        "en": "coverage = share of open time with live sensor data",
    },
    "def_fc": {
        "fi": "F† = käyttöaste katetulta ajalta (käyttöaika ÷ aika, jolta dataa on); merkitty †",
        "sv": "F† = frekvens under täckt tid (upptagen tid ÷ tid med data); markerad med †",
        "en": "F† = frequency on covered time (occupied ÷ seconds with data); marked †",
    },
    "def_low": {
        "fi": "⚠ = heikko kattavuus: alle {low} aukioloajasta on dataa; puuttuva data ei ole vapaata aikaa",
        "sv": "⚠ = låg täckning: data för mindre än {low} av öppettiden; saknade data är inte ledig tid",
        "en": "⚠ = low coverage: data for less than {low} of open time; missing data is not vacancy",
    },
    "def_event": {
        "fi": (
            "tapahtumapäivä = aukiolopäivä, jona jossakin tapahtumatilassa on vähintään {share} "
            "paikkamäärästä ihmisiä samalla 15 minuutin jaksolla (esim. kuukausittainen "
            "Törmäämö-aamiainen klo 8–9); muut aukiolopäivät ovat tavallisia päiviä"
        ),
        "sv": (
            "evenemangsdag = öppetdag då en evenemangslokal rymmer minst {share} av sina platser "
            "under samma 15 minuter (t.ex. den månatliga Törmäämö-frukosten kl. 8–9); övriga "
            "öppetdagar är vanliga dagar"
        ),
        "en": (
            "event day = an open day on which an event space holds at least {share} of its capacity "
            "within one 15-minute bucket (e.g. the monthly Törmäämö breakfast 08–09); other open "
            "days are ordinary days"
        ),
    },
    # ----- findings
    "f_desk": {
        "fi": "Työpisteiden käyttöaste F {f} (katetulta ajalta {fc}).",
        "sv": "Arbetsplatsernas frekvens F {f} (under täckt tid {fc}).",
        "en": "Desk frequency F {f} ({fc} on covered time).",
    },
    "f_room": {
        "fi": "Neuvotteluhuoneet: käyttöaste F {f}, täyttöaste O {o}, hyödyntämisaste U {u}.",
        "sv": "Mötesrum: frekvens F {f}, beläggning O {o}, utnyttjande U {u}.",
        "en": "Meeting rooms: frequency F {f}, occupancy O {o}, utilisation U {u}.",
    },
    "f_peak": {
        "fi": "Työpisteiden vilkkain tunti: {day} klo {hour} (F {f}); hiljaisin arkipäivä: {quiet}.",
        "sv": "Arbetsplatsernas mest belagda timme: {day} kl. {hour} (F {f}); lugnaste veckodag: {quiet}.",
        "en": "Busiest desk hour: {day} {hour}:00 (F {f}); quietest weekday: {quiet}.",
    },
    "f_rooms": {
        "fi": "Huoneissa on enintään puolet paikoista täynnä {share} niiden käyttöajasta.",
        "sv": "Rummen har högst hälften av platserna i bruk {share} av den upptagna tiden.",
        "en": "Rooms hold at most half their seats {share} of their occupied time.",
    },
    "f_events": {
        "fi": "{n} tapahtumapäivää; työpisteiden F tapahtumapäivinä {fe}, tavallisina päivinä {fo}.",
        "sv": "{n} evenemangsdagar; arbetsplatsernas F på evenemangsdagar {fe}, vanliga dagar {fo}.",
        "en": "{n} event days; desk F on event days {fe}, on ordinary days {fo}.",
    },
    "f_coverage": {
        "fi": "Anturidatan kattavuus {c}; {n} tilaa alle {low}.",
        "sv": "Sensordatans täckning {c}; {n} utrymmen under {low}.",
        "en": "Sensor coverage {c}; {n} spaces below {low}.",
    },
    # ----- sections
    "s_headline": {
        "fi": "Käyttö tilatyypeittäin ja alueittain",
        "sv": "Användning per typ och zon",
        "en": "Use by kind and zone",
    },
    "s_heatmaps": {"fi": "Viikonpäivä ja kellonaika", "sv": "Veckodag och timme", "en": "Weekday and hour"},
    "s_trends": {
        "fi": "Viikoittain ja kuukausittain",
        "sv": "Vecka för vecka och månad för månad",
        "en": "Week by week and month by month",
    },
    "s_rooms": {"fi": "Huoneiden mitoitus", "sv": "Rummens dimensionering", "en": "Room right-sizing"},
    "s_events": {
        "fi": "Tapahtumapäivät ja tavalliset päivät",
        "sv": "Evenemangsdagar och vanliga dagar",
        "en": "Event days and ordinary days",
    },
    "s_coverage": {"fi": "Anturidatan kattavuus", "sv": "Sensordatans täckning", "en": "Sensor coverage"},
    "s_bookings": {"fi": "Varaukset", "sv": "Bokningar", "en": "Bookings"},
    "s_spaces": {"fi": "Tilat", "sv": "Utrymmen", "en": "Spaces"},
    # ----- tables and charts
    "kind": {"fi": "Tilatyyppi", "sv": "Typ", "en": "Kind"},
    "zone": {"fi": "Alue", "sv": "Zon", "en": "Zone"},
    "space": {"fi": "Tila", "sv": "Utrymme", "en": "Space"},
    "spaces": {"fi": "Tiloja", "sv": "Utrymmen", "en": "Spaces"},
    "seats": {"fi": "Paikkoja", "sv": "Platser", "en": "Seats"},
    "capacity": {"fi": "Paikkoja", "sv": "Platser", "en": "Capacity"},
    "coverage": {"fi": "Kattavuus", "sv": "Täckning", "en": "Coverage"},
    "mean_count": {"fi": "Henkilöitä keskimäärin", "sv": "Personer i snitt", "en": "Mean people"},
    "peak_count": {"fi": "Enimmillään", "sv": "Högst", "en": "Peak"},
    "site_total": {"fi": "Koko kohde", "sv": "Hela platsen", "en": "Whole site"},
    "csv": {"fi": "Tiedot (CSV)", "sv": "Data (CSV)", "en": "Data (CSV)"},
    "frequency": {"fi": "Käyttöaste F", "sv": "Frekvens F", "en": "Frequency F"},
    "utilisation": {"fi": "Hyödyntämisaste U", "sv": "Utnyttjande U", "en": "Utilisation U"},
    "occupancy": {"fi": "Täyttöaste O", "sv": "Beläggning O", "en": "Occupancy O"},
    "c_headline": {
        "fi": "F, O ja U tilatyypeittäin koko ajanjaksolta",
        "sv": "F, O och U per typ för hela perioden",
        "en": "F, O and U per kind over the whole period",
    },
    "c_heat": {"fi": "{what}: {kind}", "sv": "{what}: {kind}", "en": "{what}: {kind}"},
    "heat_note": {
        "fi": "Työpisteellä U = F, joten työpisteiltä näytetään vain F. Vinoviivoitetuissa soluissa kattavuus on heikko.",
        "sv": "För arbetsplatser är U = F, så endast F visas för dem. Streckade celler har låg täckning.",
        "en": "For desks U = F, so desks show F only. Hatched cells have low coverage.",
    },
    "c_weeks": {
        "fi": "Viikoittain tilatyypeittäin",
        "sv": "Per vecka och typ",
        "en": "Week by week, per kind",
    },
    "c_months": {
        "fi": "Kuukausittain tilatyypeittäin",
        "sv": "Per månad och typ",
        "en": "Month by month, per kind",
    },
    "weeks_note": {
        "fi": "Avoin merkki: viikon kattavuus on heikko.",
        "sv": "Ofylld markör: veckans täckning är låg.",
        "en": "Hollow marker: the week's coverage is low.",
    },
    "week": {"fi": "Viikko (maanantai)", "sv": "Vecka (måndag)", "en": "Week (Monday)"},
    "month": {"fi": "Kuukausi", "sv": "Månad", "en": "Month"},
    "c_rooms": {
        "fi": "Osuus käyttöajasta henkilömäärän mukaan (pystyviiva: paikkamäärä)",
        "sv": "Andel av upptagen tid efter antal personer (lodrät linje: antal platser)",
        "en": "Share of occupied time by head count (vertical line: capacity)",
    },
    "rooms_note": {
        "fi": (
            "Henkilömäärä on kunkin 15 minuutin jakson keskiarvo tilan ollessa käytössä. "
            "P90 = henkilömäärä, joka riittää 90 %:lle käyttöajasta."
        ),
        "sv": (
            "Antalet personer är medelvärdet för varje 15-minutersperiod medan rummet är upptaget. "
            "P90 = antal personer som räcker för 90 % av den upptagna tiden."
        ),
        "en": (
            "The head count is each 15-minute bucket's mean while occupied. "
            "P90 = the head count that covers 90% of the occupied time."
        ),
    },
    "people": {"fi": "Henkilöä", "sv": "Personer", "en": "People"},
    "share_time": {
        "fi": "Osuus käyttöajasta",
        "sv": "Andel av upptagen tid",
        "en": "Share of occupied time",
    },
    "median": {"fi": "Mediaani", "sv": "Median", "en": "Median"},
    "p90": {"fi": "P90", "sv": "P90", "en": "P90"},
    "half_or_less": {"fi": "≤ puolet paikoista", "sv": "≤ hälften av platserna", "en": "≤ half the seats"},
    "over": {"fi": "yli", "sv": "över", "en": "over"},
    "no_rooms": {
        "fi": "Kohteessa ei ole useamman hengen tiloja.",
        "sv": "Platsen har inga utrymmen för fler än en person.",
        "en": "The site has no spaces seating more than one.",
    },
    "c_events": {
        "fi": "Käyttöaste tunneittain: tapahtumapäivät ja tavalliset päivät",
        "sv": "Frekvens per timme: evenemangsdagar och vanliga dagar",
        "en": "Frequency by hour: event days and ordinary days",
    },
    "event_days": {"fi": "Tapahtumapäivät", "sv": "Evenemangsdagar", "en": "Event days"},
    "ordinary_days": {"fi": "Tavalliset päivät", "sv": "Vanliga dagar", "en": "Ordinary days"},
    "days": {"fi": "Päiviä", "sv": "Dagar", "en": "Days"},
    "day_type": {"fi": "Päivät", "sv": "Dagar", "en": "Day type"},
    "date": {"fi": "Päivä", "sv": "Datum", "en": "Date"},
    "hour": {"fi": "Tunti", "sv": "Timme", "en": "Hour"},
    "no_events": {
        "fi": "Ajanjaksolla ei ole tapahtumapäiviä (tai kohteessa ei ole tapahtumatilaa).",
        "sv": "Perioden har inga evenemangsdagar (eller platsen har ingen evenemangslokal).",
        "en": "The period has no event days (or the site has no event space).",
    },
    "c_coverage": {
        "fi": "Kattavuus tiloittain ja viikoittain (× = heikko kattavuus)",
        "sv": "Täckning per utrymme och vecka (× = låg täckning)",
        "en": "Coverage per space and week (× = low coverage)",
    },
    "low_spaces": {
        "fi": "Tilat, joiden kattavuus jää alle {low}",
        "sv": "Utrymmen med täckning under {low}",
        "en": "Spaces with coverage below {low}",
    },
    "none_low": {
        "fi": "Kaikkien tilojen kattavuus on vähintään {low}.",
        "sv": "Alla utrymmen har täckning på minst {low}.",
        "en": "Every space has coverage of at least {low}.",
    },
    "no_bookings": {
        "fi": "Varaustietoja ei annettu (--bookings); tämä osio jää tyhjäksi.",
        "sv": "Inga bokningsdata angavs (--bookings); avsnittet är tomt.",
        "en": "No bookings were given (--bookings); this section is empty.",
    },
    "contents": {"fi": "Sisältö", "sv": "Innehåll", "en": "Contents"},
    # ----- bookings
    "bookings_intro": {
        "fi": "Varaukset lähteestä {source}: {n} varausta ajanjaksolla, {skipped} tapahtumaa ohitettu{reasons}.",
        "sv": "Bokningar från {source}: {n} bokningar under perioden, {skipped} händelser överhoppade{reasons}.",
        "en": "Bookings from {source}: {n} bookings in the period, {skipped} events skipped{reasons}.",
    },
    "bookings_note": {
        "fi": (
            "Käytetty = joku saapui 15 minuutin kuluessa varauksen alusta; saapumatta = tila nähtiin "
            "tyhjänä (kattavuus vähintään 90 %); tuntematon = dataa liian vähän, ei lasketa "
            "saapumatta jääneeksi. Puolityhjä = käytetyssä varauksessa keskimäärin alle puolet "
            "paikoista käytössä. Varaamaton käyttö = käyttöaika, jota mikään varaus ei kata."
        ),
        "sv": (
            "Använd = någon kom inom 15 minuter från bokningens början; uteblev = rummet sågs tomt "
            "(täckning minst 90 %); okänd = för lite data, räknas inte som uteblivet. Halvtomt = "
            "använd bokning med i snitt färre än hälften av platserna i bruk. Obokad användning = "
            "upptagen tid som ingen bokning täcker."
        ),
        "en": (
            "Used = somebody came within 15 minutes of the start; no-show = the room was seen empty "
            "(coverage at least 90%); unknown = too little data, never counted as a no-show. "
            "Half-empty = a used booking with on average fewer than half the seats taken. Unbooked "
            "use = occupied time no booking covers."
        ),
    },
    "b_bookings": {"fi": "Varauksia", "sv": "Bokningar", "en": "Bookings"},
    "b_used": {"fi": "Käytetty", "sv": "Använda", "en": "Used"},
    "b_no_shows": {"fi": "Saapumatta", "sv": "Uteblivna", "en": "No-shows"},
    "b_unknown": {"fi": "Tuntematon", "sv": "Okända", "en": "Unknown"},
    "b_no_show_rate": {"fi": "Saapumatta-osuus", "sv": "Andel uteblivna", "en": "No-show rate"},
    "b_half_empty": {"fi": "Puolityhjiä", "sv": "Halvtomma", "en": "Half-empty"},
    "b_booked_h": {"fi": "Varattu (h)", "sv": "Bokat (h)", "en": "Booked (h)"},
    "b_unbooked_h": {"fi": "Varaamaton käyttö (h)", "sv": "Obokad användning (h)", "en": "Unbooked use (h)"},
    "c_bookings": {
        "fi": "Varausten toteutuminen tiloittain",
        "sv": "Bokningarnas utfall per rum",
        "en": "What became of the bookings, per room",
    },
}


def t(key: str, lang: str, **kw: object) -> str:
    text = T[key][lang]
    return text.format(**kw) if kw else text


def kind_name(kind: str, lang: str) -> str:
    return KIND_NAMES[lang].get(kind, kind)


def weekday(day: int, lang: str) -> str:
    return WEEKDAYS[lang][day]


def pct(x: float | None, lang: str, digits: int = 1) -> str:
    """A share as a percentage: ``45.3%`` in English, ``45,3 %`` in Finnish and Swedish."""
    if x is None or x != x:
        return "–"
    text = f"{x * 100:.{digits}f}"
    if lang == "en":
        return f"{text}%"
    return f"{text.replace('.', ',')}\u00a0%"


def num(x: float | None, lang: str, digits: int = 1) -> str:
    if x is None or x != x:
        return "–"
    text = f"{x:.{digits}f}"
    return text if lang == "en" else text.replace(".", ",")


def day(d: date, lang: str) -> str:
    """A date as each language writes it: 24.11.2026 (fi, sv) or 2026-11-24 (en, ISO 8601)."""
    if lang in ("fi", "sv"):
        return f"{d.day}.{d.month}.{d.year}"
    return d.isoformat()
