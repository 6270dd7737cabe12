"""Colours, markers, line styles and hatches that tell series apart for every reader.

About one man in twelve sees red and green alike, and a projector or a grey-scale printout washes
colours out further, so the figures never rely on colour alone: each series also gets its own marker
and line style (bars: a hatch pattern). The colours are the Okabe-Ito palette (Okabe & Ito, "Color
Universal Design", 2008), chosen to stay distinct under the common kinds of colour blindness. Yellow,
faint on white, comes last.
"""

from __future__ import annotations

__all__ = ["HATCHES", "LINESTYLES", "MARKERS", "OKABE_ITO", "bar_style", "line_style"]

#: Blue, orange, bluish green, vermillion, reddish purple, sky blue, black, yellow.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
#: Circle, square, triangle, diamond, down-triangle, pentagon, cross, star: distinct in outline alone.
MARKERS = ("o", "s", "^", "D", "v", "p", "X", "*")
#: Solid, dashed, dash-dot, dotted, then longer dashes and dash-dot-dot (as (offset, (on, off, ...))).
LINESTYLES = ("-", "--", "-.", ":", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2)))
#: None for the first series, then patterns a grey-scale copy still tells apart.
HATCHES = (None, "//", "..", "xx", "\\\\", "oo", "--", "++")


def line_style(k: int) -> dict:
    """Colour, marker and line style of the ``k``-th series of a line plot (they repeat after eight)."""
    k %= len(OKABE_ITO)
    return {"color": OKABE_ITO[k], "marker": MARKERS[k], "linestyle": LINESTYLES[k]}


def bar_style(k: int) -> dict:
    """Face colour and hatch of the ``k``-th series of grouped bars (edges drawn so the hatch shows)."""
    k %= len(OKABE_ITO)
    return {"color": OKABE_ITO[k], "hatch": HATCHES[k], "edgecolor": "white" if k == 6 else "black",
            "linewidth": 0.6}
