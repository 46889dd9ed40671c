"""POPE's own answer reading (RUCAIBox/POPE, evaluate.py). docs/benchmarks.md § POPE.

The script keeps the text before the first '.', drops commas, splits on single spaces, and reads "no" when one of
the words is exactly "No", "no" or "not"; every other answer — "", "Nope.", "NO", "There isn't a dog" — is "yes".
The harness scores real POPE with this reading (so numbers compare with papers) and reports, per answer, whether
it held neither a yes nor a no at all (`neither`, our first-sentence reader, harness.world.texts.parse_yes_no):
those answers are still counted, as the official script counts them.
"""

from __future__ import annotations

from benchmarks.metrics import SumMetric

_NO_WORDS = ("No", "no", "not")


def official_yes_no(answer: str) -> str:
    text = answer or ""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if any(w in words for w in _NO_WORDS) else "yes"


# share of answers that said neither yes nor no (read as the official script reads them, and reported)
neither_rate = SumMetric("pope_neither", lambda r: (1, bool(r.get("neither"))), lambda c: c[1] / c[0], 2)
