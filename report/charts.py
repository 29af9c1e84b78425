"""The report's charts: matplotlib figures rendered to SVG text for inlining in the HTML.

No pyplot and no display: each chart is a bare :class:`matplotlib.figure.Figure` saved as SVG. The
output is deterministic (a fixed ``svg.hashsalt`` for the ids, no date in the metadata) so the same
data gives the same file. Text stays text (``svg.fonttype = none``): smaller, searchable in the PDF,
drawn in the page's sans-serif font.

Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies); every series
also differs by hatch, marker or line style, and the heatmaps use ``cividis``, whose lightness rises
steadily, so the charts read in greyscale print as well.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ..sensors.site import KINDS
from .analysis import LOW_COVERAGE, Analysis, RoomSizing
from .text import kind_name, pct, t, weekday

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with any common colour deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "++")
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", "-.", ":", "-", "--")
#: Sequential, perceptually uniform, designed for colour-vision deficiencies; monotonic in lightness.
HEATMAP_CMAP = "cividis"
#: Page width of a chart: A4 (210 mm) less 2 × 18 mm margins ≈ 6.8 in.
WIDTH_IN = 6.8

RC = {
    "svg.hashsalt": "tila-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "hatch.linewidth": 0.6,
    "legend.frameon": False,
}


def _svg(fig: Figure, label: str) -> str:
    """The figure as inline SVG: no XML prologue, scales to its container, labelled for readers."""
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    aria = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")

    def root(m: re.Match[str]) -> str:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", m.group(0))
        return tag[:-1] + f' class="chart" role="img" aria-label="{aria}">'

    return re.sub(r"<svg[^>]*>", root, text, count=1)


def _figure(height_in: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def _percent_axis(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def _kinds(an: Analysis, only: Sequence[str] = KINDS) -> list[str]:
    return [r["kind"] for r in an.kinds if r["kind"] in only]


# ----------------------------------------------------------------------------------------- charts


def headline(an: Analysis, lang: str) -> str:
    with matplotlib.rc_context(RC):
        fig = _figure(2.8)
        ax = fig.add_subplot()
        kinds = _kinds(an)
        x = np.arange(len(kinds))
        metrics = ("frequency", "occupancy", "utilisation")
        width = 0.26
        for i, m in enumerate(metrics):
            values = [an.kind(k)[m] or 0.0 for k in kinds]  # type: ignore[index]
            bars = ax.bar(
                x + (i - 1) * width,
                values,
                width,
                label=t(m, lang),
                color=PALETTE[i],
                hatch=HATCHES[i],
                edgecolor="black",
                linewidth=0.5,
            )
            ax.bar_label(bars, labels=[pct(v, lang, 0) for v in values], fontsize=7, padding=1)
        ax.set_xticks(x, [kind_name(k, lang) for k in kinds])
        ax.set_ylim(0, 1.08)
        _percent_axis(ax)
        fig.legend(loc="outside upper center", ncols=3)
        return _svg(fig, t("c_headline", lang))


def heatmap(an: Analysis, lang: str, kind: str, metric: str) -> str:
    cells = [c for c in an.heatmap if c["kind"] == kind]
    days = sorted({c["weekday"] for c in cells})
    hours = list(range(min(c["hour"] for c in cells), max(c["hour"] for c in cells) + 1))
    grid = np.full((len(days), len(hours)), np.nan)
    low = np.zeros_like(grid, dtype=bool)
    for c in cells:
        r, h = days.index(c["weekday"]), hours.index(c["hour"])
        value = c[metric]
        grid[r, h] = np.nan if value is None else value
        low[r, h] = c["coverage"] is not None and c["coverage"] < LOW_COVERAGE
    title = t("c_heat", lang, what=t(metric, lang), kind=kind_name(kind, lang))
    with matplotlib.rc_context(RC):
        fig = _figure(0.55 + 0.3 * len(days))
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps[HEATMAP_CMAP]
        image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for (r, h), value in np.ndenumerate(grid):
            if value == value:
                # Dark text on the light end of the scale, light text on the dark end.
                ink = "black" if value > 0.55 else "white"
                ax.text(h, r, f"{value * 100:.0f}", ha="center", va="center", fontsize=7, color=ink)
            if low[r, h]:
                ax.add_patch(
                    Rectangle((h - 0.5, r - 0.5), 1, 1, fill=False, hatch="////", edgecolor="#D55E00", lw=0)
                )
        ax.set_yticks(range(len(days)), [weekday(d, lang) for d in days])
        ax.set_xticks(range(len(hours)), [f"{h:02d}" for h in hours])
        ax.set_title(title, loc="left")
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
        _percent_axis(bar.ax)
        return _svg(fig, title)


def _dates(rows: list[dict[str, Any]]) -> list[date]:
    return sorted({date.fromisoformat(r["start"][:10]) for r in rows})


def trends_weeks(an: Analysis, lang: str) -> str:
    return _trend(an, lang, an.weeks, t("c_weeks", lang), bars=False)


def trends_months(an: Analysis, lang: str) -> str:
    return _trend(an, lang, an.months, t("c_months", lang), bars=True)


def _trend(an: Analysis, lang: str, rows: list[dict[str, Any]], title: str, bars: bool) -> str:
    kinds = _kinds(an)
    starts = _dates(rows)
    index = {d: i for i, d in enumerate(starts)}
    with matplotlib.rc_context(RC):
        fig = _figure(4.4)
        axes = fig.subplots(2, 1, sharex=True)
        for ax, metric in zip(axes, ("frequency", "utilisation"), strict=True):
            width = 0.8 / max(1, len(kinds))
            for i, kind in enumerate(kinds):
                mine = [r for r in rows if r["kind"] == kind and r[metric] is not None]
                x = np.array([index[date.fromisoformat(r["start"][:10])] for r in mine], dtype=float)
                y = np.array([r[metric] for r in mine])
                low = np.array([(r["coverage"] or 0) < LOW_COVERAGE for r in mine], dtype=bool)
                style = {"color": PALETTE[i], "label": kind_name(kind, lang)}
                if bars:
                    ax.bar(
                        x + (i - (len(kinds) - 1) / 2) * width,
                        y,
                        width,
                        hatch=HATCHES[i],
                        edgecolor="black",
                        linewidth=0.4,
                        **style,
                    )
                else:
                    ax.plot(x, y, linestyle=LINESTYLES[i], marker=MARKERS[i], markersize=3, lw=1, **style)
                    if low.any():
                        ax.plot(
                            x[low], y[low], linestyle="none", marker=MARKERS[i], markersize=6,
                            markerfacecolor="white", markeredgecolor=PALETTE[i],
                        )  # fmt: skip
            ax.set_ylabel(t(metric, lang))
            ax.set_ylim(0, 1)
            _percent_axis(ax)
        step = max(1, len(starts) // 12)
        ticks = list(range(0, len(starts), step))
        fmt: Callable[[date], str] = (lambda d: f"{d:%m/%y}") if bars else (lambda d: f"{d:%d.%m.}")
        axes[-1].set_xticks(ticks, [fmt(starts[i]) for i in ticks])
        axes[-1].set_xlabel(t("month" if bars else "week", lang))
        axes[0].set_title(title, loc="left")
        axes[0].legend(loc="upper right", ncols=len(kinds))
        return _svg(fig, title)


def _bins(capacity: int) -> int:
    """People per bar: single people up to 20 seats, wider bins beyond so a hall stays readable."""
    return max(1, -(-capacity // 20))


def rooms(an: Analysis, lang: str) -> str:
    items: list[RoomSizing] = an.rooms
    cols = 2
    nrows = -(-len(items) // cols)
    title = t("c_rooms", lang)
    names = {s.id: s.name.get(lang) or s.name.get("en") or s.id for s in an.site.spaces}
    with matplotlib.rc_context(RC):
        fig = _figure(0.5 + 1.55 * nrows)
        axes = fig.subplots(nrows, cols, squeeze=False)
        for ax, room in zip(axes.flat, items, strict=False):
            width = _bins(room.capacity)
            total = room.occupied_s or 1.0
            seconds = np.array(room.seconds[:-1])
            starts = np.arange(1, room.capacity + 1, width)
            shares = [seconds[s - 1 : s - 1 + width].sum() / total for s in starts]
            ax.bar(
                starts + (width - 1) / 2, shares, width * 0.85, color=PALETTE[0], edgecolor="black", lw=0.3
            )
            over = room.seconds[-1] / total
            if over > 0:
                ax.bar(room.capacity + 1 + (width - 1) / 2, over, width * 0.85, color=PALETTE[5], hatch="///")
            ax.axvline(room.capacity + 0.5, color="black", lw=1, linestyle="--")
            ax.set_title(f"{names[room.space]} ({room.capacity})", loc="left", fontsize=8.5)
            ax.set_xlim(0.4, room.capacity + 1 + width)
            ax.set_ylim(0, 1)
            _percent_axis(ax)
        for ax in axes.flat[len(items) :]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel(t("people", lang))
        fig.suptitle(title, x=0.01, ha="left", fontsize=9.5)
        return _svg(fig, title)


def events(an: Analysis, lang: str) -> str:
    kinds = [k for k in ("desk", "room", "event") if k in _kinds(an)]
    title = t("c_events", lang)
    with matplotlib.rc_context(RC):
        fig = _figure(0.6 + 1.5 * len(kinds))
        axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
        for ax, kind in zip(axes, kinds, strict=True):
            for i, (cls, key) in enumerate((("ordinary", "ordinary_days"), ("event", "event_days"))):
                rows = [
                    r
                    for r in an.day_class_hours
                    if r["kind"] == kind and r["days"] == cls and r["frequency"] is not None
                ]
                if rows:
                    ax.plot(
                        [r["hour"] for r in rows], [r["frequency"] for r in rows],
                        color=PALETTE[i * 5], linestyle=LINESTYLES[i], marker=MARKERS[i],
                        markersize=3, lw=1.2, label=t(key, lang),
                    )  # fmt: skip
            ax.set_title(kind_name(kind, lang), loc="left", fontsize=8.5)
            ax.set_ylim(0, 1)
            _percent_axis(ax)
        axes[-1].set_xlabel(t("hour", lang))
        axes[0].legend(loc="upper right", ncols=2)
        fig.suptitle(title, x=0.01, ha="left", fontsize=9.5)
        return _svg(fig, title)


def coverage(an: Analysis, lang: str) -> str:
    spaces = [s.id for s in an.site.spaces]
    starts = _dates(an.space_weeks)
    grid = np.full((len(spaces), len(starts)), np.nan)
    row_of = {s: i for i, s in enumerate(spaces)}
    col_of = {d: i for i, d in enumerate(starts)}
    for r in an.space_weeks:
        if r["coverage"] is not None:
            grid[row_of[r["space"]], col_of[date.fromisoformat(r["start"][:10])]] = r["coverage"]
    title = t("c_coverage", lang)
    with matplotlib.rc_context(RC):
        fig = _figure(min(9.0, 0.9 + 0.13 * len(spaces)))
        ax = fig.add_subplot()
        image = ax.imshow(grid, cmap=matplotlib.colormaps[HEATMAP_CMAP], vmin=0, vmax=1, aspect="auto")
        ys, xs = np.nonzero(grid < LOW_COVERAGE)
        if len(xs):
            ax.plot(xs, ys, linestyle="none", marker="x", markersize=3, color="#D55E00", mew=0.8)
        ax.set_yticks(range(len(spaces)), spaces, fontsize=5.5 if len(spaces) > 30 else 7)
        step = max(1, len(starts) // 12)
        ax.set_xticks(
            range(0, len(starts), step), [f"{starts[i]:%d.%m.}" for i in range(0, len(starts), step)]
        )
        ax.set_xlabel(t("week", lang))
        ax.set_title(title, loc="left")
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
        _percent_axis(bar.ax)
        return _svg(fig, title)


def bookings(an: Analysis, lang: str) -> str:
    """Per bookable space: bookings used (half-empty apart), no-shows and unknown, as stacked bars."""
    rows = an.bookings.rooms()
    names = {s.id: s.name.get(lang) or s.name.get("en") or s.id for s in an.site.spaces}
    title = t("c_bookings", lang)
    with matplotlib.rc_context(RC):
        fig = _figure(0.8 + 0.32 * max(1, len(rows)))
        ax = fig.add_subplot()
        y = np.arange(len(rows))
        left = np.zeros(len(rows))
        parts = (
            ("b_used", [r["used"] - r["half_empty"] for r in rows]),
            ("b_half_empty", [r["half_empty"] for r in rows]),
            ("b_no_shows", [r["no_shows"] for r in rows]),
            ("b_unknown", [r["unknown"] for r in rows]),
        )
        for i, (key, values) in enumerate(parts):
            ax.barh(
                y, values, left=left, color=PALETTE[(0, 4, 5, 6)[i]], hatch=HATCHES[i],
                edgecolor="black", lw=0.4, label=t(key, lang),
            )  # fmt: skip
            left += np.array(values, dtype=float)
        ax.set_yticks(y, [names.get(r["space"], r["space"]) for r in rows])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.invert_yaxis()
        ax.set_xlabel(t("b_bookings", lang))
        ax.set_title(title, loc="left")
        fig.legend(loc="outside lower center", ncols=4)
        return _svg(fig, title)
