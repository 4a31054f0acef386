"""The README quotes BENCHMARKS.md rows as ``("<measure>": <value> <unit>``;
each quote must name a row of the current BENCHMARKS.md and agree with its
"ours" column, so a regenerated BENCHMARKS.md cannot leave the README stale."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: ``("whole local run": 21.6 s`` in the README.
_QUOTE = re.compile(r'\("(?P<measure>[^"]+)": (?P<value>[0-9][0-9,.]*) (?P<unit>[A-Za-z/]+)')


def _rows(markdown: str) -> dict[str, str]:
    """Summary rows of BENCHMARKS.md: measure -> "ours" cell."""
    rows: dict[str, str] = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] not in ("measure", "") and not cells[0].startswith("-"):
            rows.setdefault(cells[0], cells[3])
    return rows


def _row_for(measure: str, rows: dict[str, str]) -> str:
    """The one row whose measure is the quoted name, or starts with it and a " (..." qualifier."""
    found = [
        ours for name, ours in rows.items() if name == measure or name.startswith(measure + " (")
    ]
    assert len(found) == 1, f"README quotes {measure!r}: {len(found)} BENCHMARKS.md rows match"
    return found[0]


def _agree(quoted: str, unit: str, ours: str) -> bool:
    """The quote is the row's value to the quote's precision, in the same unit."""
    match = re.fullmatch(r"\$?([0-9][0-9,.]*)\s*(\S*)", ours)
    if match is None or match.group(2) != unit:
        return False
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    value = float(match.group(1).replace(",", ""))
    return f"{value:,.{decimals}f}" == quoted


def test_every_quote_of_a_benchmark_row_agrees_with_benchmarks_md() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = _rows((ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"))
    quotes = list(_QUOTE.finditer(readme))
    assert len(quotes) >= 3, "the README's run and set-up times quote BENCHMARKS.md"
    stale = [
        f"{q['measure']}: README {q['value']} {q['unit']}, BENCHMARKS.md {ours}"
        for q in quotes
        if not _agree(q["value"], q["unit"], ours := _row_for(q["measure"], rows))
    ]
    assert not stale, stale


def test_a_stale_quote_is_caught() -> None:
    rows = {"whole local run (make run, data cached)": "21.6 s"}
    assert _agree("21.6", "s", _row_for("whole local run", rows))
    assert not _agree("22.1", "s", _row_for("whole local run", rows))
    assert not _agree("21.6", "ms", "21.6 s")
    assert _agree("8.9", "s", "8.94 s")
    assert not _agree("9", "s", "8.4 s")
