"""The report as one self-contained HTML page: inline SVG charts, inline CSS, no scripts or fonts.

It prints to A4 PDF as it is: each section starts on a new page, charts and small tables never split
across pages, long tables repeat their header. Every chart and table links to its CSV file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from .analysis import EVENT_CROWD_SHARE, LOW_COVERAGE, Analysis
from .tables import Table
from .text import day, kind_name, pct, t, weekday

#: Section ids in page order (the tests and the PDF check look for them).
SECTIONS = ("summary", "headline", "heatmaps", "trends", "rooms", "events", "coverage", "bookings")

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #111; background: #fff;
  margin: 0 auto; max-width: 62rem; padding: 1.5rem; line-height: 1.4; font-size: 10.5pt; }
h1 { font-size: 20pt; margin: 0 0 .4rem; }
h2 { font-size: 14pt; margin: 0 0 .6rem; border-bottom: 2px solid #0072B2; padding-bottom: .2rem; }
h3 { font-size: 11pt; margin: 1rem 0 .4rem; }
section { margin-bottom: 2.5rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .6rem 0; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
ul.findings li { margin: .25rem 0; }
figure { margin: 1rem 0; }
svg.chart { display: block; width: 100%; height: auto; }
figcaption, .note { font-size: 9pt; color: #333; }
a { color: #0050a0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 9pt; }
caption { text-align: left; font-weight: bold; padding: .2rem 0; caption-side: top; }
th, td { border-bottom: 1px solid #bbb; padding: .15rem .35rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #333; }
tr.total td { font-weight: bold; border-top: 2px solid #333; }
td.low { background: #fbe3d6; }
.csv { white-space: nowrap; }
ul.days { columns: 3; font-size: 9pt; padding-left: 1.2rem; }
@page { size: A4; margin: 16mm 18mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  section { break-before: page; margin: 0; }
  section#summary { break-before: auto; }
  figure, table.small, .keep { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  td.low { background: none; }
}
"""


class Page:
    """What the sections share: the analysis, the language, the charts and the CSV tables."""

    def __init__(self, an: Analysis, lang: str, charts: dict[str, str], tables: dict[str, Table]) -> None:
        self.an, self.lang, self.charts, self.tables = an, lang, charts, tables

    def t(self, key: str, **kw: object) -> str:
        return escape(t(key, self.lang, **kw))

    def pct(self, x: float | None) -> str:
        return pct(x, self.lang)

    def csv(self, name: str) -> str:
        href = self.tables[name].href
        return f'<a class="csv" href="{escape(href)}">{self.t("csv")}: {escape(href)}</a>'

    def figure(self, chart: str, csv: str, note: str = "") -> str:
        extra = f" {escape(note)}" if note else ""
        return f"<figure>{self.charts[chart]}<figcaption>{self.csv(csv)}{extra}</figcaption></figure>"

    def space_name(self, space_id: str) -> str:
        s = self.an.site.space(space_id)
        if s is None:
            return space_id
        return s.name.get(self.lang) or s.name.get("en") or s.id

    def zone_name(self, zone_id: str) -> str:
        z = self.an.site.zone(zone_id)
        return z.label(self.lang) if z else zone_id

    def site_name(self) -> str:
        names = self.an.site.name
        return names.get(self.lang) or names.get("en") or self.an.site.id


def _low(row: dict[str, Any]) -> bool:
    return row.get("coverage") is not None and row["coverage"] < LOW_COVERAGE


def metric_table(
    p: Page,
    caption: str,
    first: str,
    rows: Sequence[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    csv: str,
    total: dict[str, Any] | None = None,
    small: bool = True,
) -> str:
    """F, O, U, coverage and F† per row; low-coverage cells flagged."""
    head = [first, p.t("spaces"), p.t("seats"), "F", "O", "U", p.t("coverage"), "F†"]
    out = [
        f'<table class="{"small" if small else "long"}"><caption>{escape(caption)} · {p.csv(csv)}</caption>'
    ]
    out.append("<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in head) + "</tr></thead><tbody>")

    def line(row: dict[str, Any], name: str, cls: str = "") -> str:
        low = _low(row)
        flag = ' class="low"' if low else ""
        mark = " ⚠" if low else ""
        cells = [
            f"<td>{escape(name)}</td>",
            f"<td>{row['spaces']}</td>",
            f"<td>{row['seats']}</td>",
            f"<td{flag}>{p.pct(row['frequency'])}</td>",
            f"<td>{p.pct(row['occupancy'])}</td>",
            f"<td>{p.pct(row['utilisation'])}</td>",
            f"<td{flag}>{p.pct(row['coverage'])}{mark}</td>",
            f"<td>{p.pct(row['frequency_covered'])}</td>",
        ]
        return f"<tr{f' class={cls!r}' if cls else ''}>{''.join(cells)}</tr>"

    out.extend(line(r, label(r)) for r in rows)
    if total is not None:
        out.append(line(total, t("site_total", p.lang), "total"))
    out.append("</tbody></table>")
    return "".join(out)


# --------------------------------------------------------------------------------------- sections


def findings(p: Page) -> list[str]:
    an, lang = p.an, p.lang
    out: list[str] = []
    desk = an.kind("desk")
    if desk:
        out.append(t("f_desk", lang, f=pct(desk["frequency"], lang), fc=pct(desk["frequency_covered"], lang)))
    room = an.kind("room")
    if room:
        out.append(
            t(
                "f_room",
                lang,
                f=pct(room["frequency"], lang),
                o=pct(room["occupancy"], lang),
                u=pct(room["utilisation"], lang),
            )
        )
    cells = [c for c in an.heatmap if c["kind"] == "desk" and c["frequency"] is not None]
    if cells:
        best = max(cells, key=lambda c: c["frequency"])
        by_day: dict[int, list[float]] = {}
        for c in cells:
            by_day.setdefault(c["weekday"], []).append(c["frequency"] * c["open_seconds"])
        open_by_day: dict[int, float] = {}
        for c in cells:
            open_by_day[c["weekday"]] = open_by_day.get(c["weekday"], 0.0) + c["open_seconds"]
        quiet = min(by_day, key=lambda d: sum(by_day[d]) / open_by_day[d])
        out.append(
            t(
                "f_peak",
                lang,
                day=weekday(best["weekday"], lang),
                hour=f"{best['hour']:02d}",
                f=pct(best["frequency"], lang),
                quiet=weekday(quiet, lang),
            )
        )
    rooms = [r for r in an.rooms if r.kind == "room" and r.occupied_s > 0]
    if rooms:
        half = sum(r.occupied_s * (r.share_at_most(r.capacity / 2) or 0.0) for r in rooms)
        out.append(t("f_rooms", lang, share=pct(half / sum(r.occupied_s for r in rooms), lang)))
    classes = {r["days"]: r for r in an.day_classes if r["kind"] == "desk"}
    if an.event_days and "event" in classes and "ordinary" in classes:
        n = len({e.day for e in an.event_days})
        out.append(
            t(
                "f_events",
                lang,
                n=n,
                fe=pct(classes["event"]["frequency"], lang),
                fo=pct(classes["ordinary"]["frequency"], lang),
            )
        )
    low = [r for r in an.spaces if _low(r)]
    out.append(
        t("f_coverage", lang, c=pct(an.total["coverage"], lang), n=len(low), low=pct(LOW_COVERAGE, lang, 0))
    )
    return out


def summary(p: Page, version: str) -> str:
    an = p.an
    per = an.period
    site = an.site
    period = t(
        "period_value",
        p.lang,
        first=day(per.first, p.lang),
        last=day(per.last, p.lang),
        days=per.days,
        open_days=an.open_days,
    )
    seats = sum(s.capacity for s in site.spaces)
    toc = "".join(f'<li><a href="#{s}">{p.t("s_" + s)}</a></li>' for s in SECTIONS[1:])
    defs = ["def_f", "def_o", "def_u", "def_c", "def_fc"]
    low = pct(LOW_COVERAGE, p.lang, 0)
    return f"""
<section id="summary">
<h1>{p.t("title")}</h1>
<dl class="facts">
<dt>{p.t("site")}</dt><dd>{p.t("site_value", name=p.site_name(), spaces=len(site.spaces), seats=seats)}</dd>
<dt>{p.t("period")}</dt><dd>{escape(period)}</dd>
</dl>
<h2>{p.t("findings")}</h2>
<ul class="findings">{"".join(f"<li>{escape(x)}</li>" for x in findings(p))}</ul>
<h3>{p.t("method")}</h3>
<p>{p.t("method_text", source=site.source.rsplit("/", 1)[-1], tz=site.timezone)}</p>
<h3>{p.t("definitions")}</h3>
<p>{p.t("def_source")}</p>
<ul>{"".join(f"<li>{p.t(k)}</li>" for k in defs)}
<li>{p.t("def_low", low=low)}</li>
<li>{p.t("def_event", share=pct(EVENT_CROWD_SHARE, p.lang, 0))}</li></ul>
<h3>{p.t("contents")}</h3>
<ol>{toc}</ol>
<p class="note">{p.t("made_with", version=version)}</p>
</section>"""


def headline(p: Page) -> str:
    an = p.an
    kinds = metric_table(
        p,
        p.t("kind"),
        p.t("kind"),
        an.kinds,
        lambda r: kind_name(r["kind"], p.lang),
        "headline_kind",
        an.total,
    )
    zones = metric_table(
        p, p.t("zone"), p.t("zone"), an.zones, lambda r: p.zone_name(r["zone"]), "headline_zone"
    )
    return f"""
<section id="headline">
<h2>{p.t("s_headline")}</h2>
{p.figure("headline", "headline_kind")}
{kinds}
{zones}
<p class="note">{p.t("def_fc")}. {p.t("def_low", low=pct(LOW_COVERAGE, p.lang, 0))}.</p>
</section>"""


def heatmaps(p: Page) -> str:
    figs = [p.figure(name, "heatmap_kind") for name in p.charts if name.startswith("heatmap_")]
    return f"""
<section id="heatmaps">
<h2>{p.t("s_heatmaps")}</h2>
<p class="note">{p.t("heat_note")}</p>
{"".join(figs)}
</section>"""


def trends(p: Page) -> str:
    return f"""
<section id="trends">
<h2>{p.t("s_trends")}</h2>
{p.figure("trend_week", "trend_week", t("weeks_note", p.lang))}
{p.figure("trend_month", "trend_month")}
</section>"""


def rooms(p: Page) -> str:
    an = p.an
    if not an.rooms:
        return f'<section id="rooms"><h2>{p.t("s_rooms")}</h2><p>{p.t("no_rooms")}</p></section>'
    head = [
        p.t("space"),
        p.t("capacity"),
        "F",
        "O",
        "U",
        p.t("median"),
        p.t("p90"),
        p.t("half_or_less"),
        p.t("over"),
    ]
    by_space = {r["space"]: r for r in an.spaces}
    body = []
    for room in an.rooms:
        r = by_space[room.space]
        total = room.occupied_s
        over = room.seconds[-1] / total if total > 0 else None
        q50, q90 = room.quantile(0.5), room.quantile(0.9)
        body.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    escape(p.space_name(room.space)),
                    room.capacity,
                    p.pct(r["frequency"]),
                    p.pct(r["occupancy"]),
                    p.pct(r["utilisation"]),
                    "–" if q50 is None else q50,
                    "–" if q90 is None else q90,
                    p.pct(room.share_at_most(room.capacity / 2)),
                    p.pct(over),
                )
            )
            + "</tr>"
        )
    table = (
        f'<table class="small"><caption>{p.t("s_rooms")} · {p.csv("rooms_summary")}</caption><thead><tr>'
        + "".join(f'<th scope="col">{h}</th>' for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
    return f"""
<section id="rooms">
<h2>{p.t("s_rooms")}</h2>
{p.figure("rooms", "rooms_headcount")}
{table}
<p class="note">{p.t("rooms_note")}</p>
</section>"""


def events(p: Page) -> str:
    an = p.an
    share = pct(EVENT_CROWD_SHARE, p.lang, 0)
    if not an.event_days:
        return f"""
<section id="events">
<h2>{p.t("s_events")}</h2>
<p>{p.t("def_event", share=share)}.</p>
<p>{p.t("no_events")}</p>
</section>"""
    head = [p.t("kind"), p.t("day_type"), p.t("days"), "F", "O", "U", p.t("coverage")]
    body = []
    for r in an.day_classes:
        name = p.t("event_days") if r["days"] == "event" else p.t("ordinary_days")
        low = _low(r)
        body.append(
            "<tr>"
            + f"<td>{escape(kind_name(r['kind'], p.lang))}</td><td>{name}</td><td>{r['day_count']}</td>"
            + f"<td>{p.pct(r['frequency'])}</td><td>{p.pct(r['occupancy'])}</td>"
            + f"<td>{p.pct(r['utilisation'])}</td>"
            + f"<td{' class=low' if low else ''}>{p.pct(r['coverage'])}{' ⚠' if low else ''}</td></tr>"
        )
    table = (
        f'<table class="small"><caption>{p.t("s_events")} · {p.csv("event_compare")}</caption><thead><tr>'
        + "".join(f'<th scope="col">{h}</th>' for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
    days = "".join(
        f"<li>{escape(day(e.day, p.lang))} {escape(weekday(e.day.weekday(), p.lang))}: "
        f"{escape(p.space_name(e.space))} {e.peak}/{e.capacity}</li>"
        for e in an.event_days
    )
    return f"""
<section id="events">
<h2>{p.t("s_events")}</h2>
<p>{p.t("def_event", share=share)}.</p>
{table}
{p.figure("events", "event_hourly")}
<h3>{p.t("event_days")} · {p.csv("event_days")}</h3>
<ul class="days">{days}</ul>
</section>"""


def coverage(p: Page) -> str:
    an = p.an
    low = pct(LOW_COVERAGE, p.lang, 0)
    weak = [r for r in an.spaces if _low(r)]
    if weak:
        listing = metric_table(
            p,
            p.t("low_spaces", low=low),
            p.t("space"),
            weak,
            lambda r: p.space_name(r["space"]),
            "headline_space",
        )
    else:
        listing = f"<p>{p.t('none_low', low=low)}</p>"
    spaces = metric_table(
        p,
        p.t("s_spaces"),
        p.t("space"),
        an.spaces,
        lambda r: p.space_name(r["space"]),
        "headline_space",
        an.total,
        small=False,
    )
    return f"""
<section id="coverage">
<h2>{p.t("s_coverage")}</h2>
<p class="note">{p.t("def_c")}. {p.t("def_low", low=low)}. {p.csv("coverage_site_week")}</p>
{p.figure("coverage", "coverage_week")}
{listing}
{spaces}
</section>"""


def bookings(p: Page) -> str:
    section = p.an.bookings
    if section is None:
        return f'<section id="bookings"><h2>{p.t("s_bookings")}</h2><p>{p.t("no_bookings")}</p></section>'
    body: str = section.html(p)
    return f'<section id="bookings"><h2>{p.t("s_bookings")}</h2>{body}</section>'


def render(an: Analysis, lang: str, charts: dict[str, str], tables: dict[str, Table], version: str) -> str:
    p = Page(an, lang, charts, tables)
    title = f"{t('title', lang)} – {p.site_name()} {day(an.period.first, lang)} – {day(an.period.last, lang)}"
    parts = [
        summary(p, version),
        headline(p),
        heatmaps(p),
        trends(p),
        rooms(p),
        events(p),
        coverage(p),
        bookings(p),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
