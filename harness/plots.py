"""Leaderboard plots: before/after bars per suite, and metric vs data size. Byte-reproducible PNGs.

Determinism: the object-oriented Figure API (no pyplot global state, no GUI backend), the Agg canvas, fixed
size/dpi/fonts (DejaVu Sans ships with matplotlib, so every machine draws the same glyphs), and PNG metadata
stripped (`Software` would otherwise carry the matplotlib version). Same records in -> same bytes out.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

from harness.suite import arrow

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "harness",
}
BASE_COLOUR, ALIGNED_COLOUR = "#9aa5b1", "#2b6cb0"
LINE_COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#975a16", "#2c7a7b", "#4a5568")


@dataclass
class Bar:
    label: str                        # "rm-dpo 5k s0"
    base: float | None
    base_ci: list[float] | None
    aligned: float | None
    aligned_ci: list[float] | None
    marker: str = ""                  # significance text shown at the bar end, e.g. "** better"


@dataclass
class SizePoint:
    size: int
    value: float
    ci: list[float] | None
    seeds: int = 1                    # runs averaged into this point


@dataclass
class SizeSeries:
    method: str
    points: list[SizePoint] = field(default_factory=list)
    base: float | None = None


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def _err(value, ci):
    """Asymmetric error bar lengths [[below], [above]] from a CI; zero when unknown."""
    if not (_num(value) and ci and len(ci) == 2 and _num(ci[0]) and _num(ci[1])):
        return [[0.0], [0.0]]
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def direction_words(direction: str) -> str:
    if direction == "higher":
        return "higher is better"
    if direction == "lower":
        return "lower is better"
    return f"closer to {direction.split(':', 1)[-1]} is better"


def before_after_png(title: str, metric: str, direction: str, bars: list[Bar], subtitle: str = "") -> bytes:
    """Horizontal bars, one pair (base, aligned) per run, 95 % CIs as whiskers, significance at the end."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        height = max(2.4, 1.4 + 0.55 * len(bars))
        fig = Figure(figsize=(7.5, height))
        ax = fig.add_subplot(1, 1, 1)
        h = 0.38
        ys = list(range(len(bars)))[::-1]          # first run on top
        for y, b in zip(ys, bars):
            if _num(b.base):
                ax.barh(y + h / 2, b.base, height=h, color=BASE_COLOUR, xerr=_err(b.base, b.base_ci),
                        error_kw={"elinewidth": 1, "capsize": 2}, label="base")
            if _num(b.aligned):
                ax.barh(y - h / 2, b.aligned, height=h, color=ALIGNED_COLOUR, xerr=_err(b.aligned, b.aligned_ci),
                        error_kw={"elinewidth": 1, "capsize": 2}, label="aligned")
        ax.set_ylim(-0.6, len(bars) - 0.4)
        ax.set_yticks(ys)
        ax.set_yticklabels([b.label for b in bars])
        ax.set_xlabel(f"{metric} {arrow(direction)} ({direction_words(direction)}; whiskers: 95 % CI)")
        # Leave room on the right for the significance text.
        tops = [v for b in bars for v, ci in ((b.base, b.base_ci), (b.aligned, b.aligned_ci)) if _num(v)
                for v in ([v] + [c for c in (ci or []) if _num(c)])]
        right = max(tops, default=1.0)
        ax.set_xlim(min(0.0, min(tops, default=0.0)), right * 1.28 if right > 0 else 1.0)
        for y, b in zip(ys, bars):
            if not (_num(b.base) or _num(b.aligned)):
                ax.text(0, y, "  no value (metric undefined on these samples)", va="center", fontsize=8,
                        color="#4a5568")
            if b.marker:
                ax.text(right * 1.02, y, b.marker, va="center", fontsize=8,
                        color={"better": "#2f855a", "worse": "#c53030"}.get(b.marker.split(" ")[-1], "#4a5568"))
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        if uniq:   # above the axes, right-aligned: never on top of a bar or a significance label
            ax.legend(uniq.values(), uniq.keys(), loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
                      fontsize=8, frameon=False)
        ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), loc="left")
        fig.tight_layout()
        return _png(fig)


def size_png(title: str, metric: str, direction: str, series: list[SizeSeries], subtitle: str = "") -> bytes:
    """Aligned metric vs preference pairs (log x), one line per method, base as a dashed line."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.0, 4.2))
        ax = fig.add_subplot(1, 1, 1)
        sizes = sorted({p.size for s in series for p in s.points})
        bases = [s.base for s in series if _num(s.base)]
        # One grey base line when every method starts from the same base (the usual case), else one per method.
        shared_base = bool(bases) and max(bases) - min(bases) <= 1e-9 * max(1.0, abs(bases[0]))
        if shared_base:
            ax.axhline(bases[0], color="#718096", linestyle="--", linewidth=1, label="base")
        for i, s in enumerate(series):
            colour = LINE_COLOURS[i % len(LINE_COLOURS)]
            pts = sorted(s.points, key=lambda p: p.size)
            # Nudge methods apart on the log axis (±3 % per method) so their whiskers do not hide each other.
            nudge = 1.0 + 0.03 * (i - (len(series) - 1) / 2)
            xs, ys = [p.size * nudge for p in pts], [p.value for p in pts]
            lo = [max(0.0, p.value - p.ci[0]) if p.ci and _num(p.ci[0]) else 0.0 for p in pts]
            hi = [max(0.0, p.ci[1] - p.value) if p.ci and _num(p.ci[1]) else 0.0 for p in pts]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", color=colour, capsize=3, label=s.method)
            for x, p in zip(xs, pts):
                if p.seeds > 1:
                    ax.annotate(f"mean of {p.seeds} seeds", (x, p.value), xytext=(6, 4), textcoords="offset points",
                                fontsize=7, color=colour)
            if _num(s.base) and not shared_base:
                ax.axhline(s.base, color=colour, linestyle="--", linewidth=1, alpha=0.7,
                           label=f"{s.method}: base")
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{n // 1000}k" if n % 1000 == 0 else str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)
        ax.set_xlabel("preference pairs (log scale); whiskers: 95 % CI")
        ax.set_ylabel(f"{metric} {arrow(direction)} ({direction_words(direction)})")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), loc="left")
        fig.tight_layout()
        return _png(fig)
