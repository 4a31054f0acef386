"""Small inline SVG charts in pure Python (the Evaluate Lambda has no
matplotlib): lines, points and bars on linear or log axes.

Text is escaped; nothing refers to a font, a script or a URL, so a chart
stays readable inside one self-contained HTML file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 360, 280
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 26, 40
BLUE, ORANGE, GREY, GREEN = "#1f77b4", "#d62728", "#999999", "#2ca02c"


@dataclass(frozen=True)
class Axis:
    """One axis: its label, its range and whether it is logarithmic."""

    label: str
    lo: float
    hi: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.log and self.lo <= 0:
            raise ValueError(f"log axis {self.label!r} needs a positive range")

    def frac(self, value: float) -> float:
        """Where ``value`` sits between ``lo`` (0) and ``hi`` (1)."""
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(v, self.lo))
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.ceil(math.log10(self.lo)), math.floor(math.log10(self.hi))
            step = max(1, (last - first) // 6 + 1)
            return [10.0**e for e in range(first, last + 1, step)]
        span = self.hi - self.lo
        if span <= 0:
            return [self.lo]
        raw = span / 5
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        start = math.ceil(self.lo / step - 1e-9) * step
        return [start + i * step for i in range(int((self.hi - start) / step + 1e-9) + 1)]


def fmt(value: float) -> str:
    """A short tick or value label."""
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{value:.3g}"


@dataclass
class Chart:
    """A chart drawn into a fixed-size SVG; call the adders, then :meth:`svg`."""

    title: str
    x: Axis
    y: Axis
    width: int = WIDTH
    height: int = HEIGHT
    _parts: list[str] = field(default_factory=list)

    def _px(self, x: float, y: float) -> tuple[float, float]:
        inner_w = self.width - LEFT - RIGHT
        inner_h = self.height - TOP - BOTTOM
        return (
            round(LEFT + self.x.frac(x) * inner_w, 1),
            round(self.height - BOTTOM - self.y.frac(y) * inner_h, 1),
        )

    def line(
        self, points: Sequence[tuple[float, float]], color: str = BLUE, *, dashed: bool = False
    ) -> Chart:
        if points:
            path = " ".join("{},{}".format(*self._px(x, y)) for x, y in points)
            dash = ' stroke-dasharray="4 3"' if dashed else ""
            self._parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>'
            )
        return self

    def point(
        self, x: float, y: float, *, color: str = BLUE, r: float = 3.0, note: str = ""
    ) -> Chart:
        px, py = self._px(x, y)
        tip = f"<title>{escape(note)}</title>" if note else ""
        self._parts.append(
            f'<circle cx="{px}" cy="{py}" r="{r}" fill="{color}" fill-opacity="0.75">{tip}</circle>'
        )
        return self

    def bar(self, x0: float, x1: float, y: float, *, color: str = GREY) -> Chart:
        (ax, ay), (bx, by) = self._px(x0, y), self._px(x1, self.y.lo)
        self._parts.append(
            f'<rect x="{ax}" y="{ay}" width="{round(bx - ax, 1)}" height="{round(by - ay, 1)}" '
            f'fill="{color}" fill-opacity="0.25"/>'
        )
        return self

    def text(self, x: float, y: float, words: str, *, color: str = "#333") -> Chart:
        px, py = self._px(x, y)
        self._parts.append(
            f'<text x="{px}" y="{py}" font-size="11" fill="{color}">{escape(words)}</text>'
        )
        return self

    def _axes(self) -> list[str]:
        left, bottom = LEFT, self.height - BOTTOM
        right, top = self.width - RIGHT, TOP
        out = [
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
            'fill="none" stroke="#ccc"/>'
        ]
        for t in self.x.ticks():
            px, _ = self._px(t, self.y.lo)
            out.append(f'<line x1="{px}" y1="{bottom}" x2="{px}" y2="{bottom + 4}" stroke="#666"/>')
            out.append(
                f'<text x="{px}" y="{bottom + 15}" font-size="10" text-anchor="middle">'
                f"{fmt(t)}</text>"
            )
        for t in self.y.ticks():
            _, py = self._px(self.x.lo, t)
            out.append(f'<line x1="{left - 4}" y1="{py}" x2="{left}" y2="{py}" stroke="#666"/>')
            out.append(
                f'<text x="{left - 6}" y="{py + 3}" font-size="10" text-anchor="end">'
                f"{fmt(t)}</text>"
            )
        scale = " (log)"
        out.append(
            f'<text x="{(left + right) / 2}" y="{self.height - 8}" font-size="11" '
            f'text-anchor="middle">{escape(self.x.label + (scale if self.x.log else ""))}</text>'
        )
        out.append(
            f'<text x="12" y="{(top + bottom) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + bottom) / 2})">'
            f"{escape(self.y.label + (scale if self.y.log else ''))}</text>"
        )
        out.append(
            f'<text x="{(left + right) / 2}" y="16" font-size="12" font-weight="bold" '
            f'text-anchor="middle">{escape(self.title)}</text>'
        )
        return out

    def svg(self) -> str:
        body = "".join([*self._axes(), *self._parts])
        return (
            # Inline in HTML5: no xmlns needed, and the page names no URL at all.
            f'<svg width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif" role="img" '
            f'aria-label="{escape(self.title)}">{body}</svg>'
        )
