"""Several assessors on one pool: their names, the overlap share every assessor judges, and their agreement.

- A name (`judge --assessor NAME`, default the OS user) is written into every judgement line and into the page's
  URL (`?assessor=NAME`) and the console's agreement table: letters, digits and `. _ - @ +`, up to 64 characters.
- The overlap (`--overlap 0.1`): a fixed share of the pool's units, chosen by a hash of the unit (so every page
  server and tab agrees without talking to the others), that each assessor judges even when another already did.
  Every other unit is judged once, by whoever reaches it first.
- Agreement: Cohen's kappa of each pair of assessors over the units both judged (their last grades), on the three
  grades and on relevant-or-not (grade >= 1).
"""
from __future__ import annotations

import getpass
import hashlib
import itertools
import math
import re

from retrieval_lab.errors import LabError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
ALLOWED = "letters, digits and . _ - @ + (up to 64 characters, starting with a letter or digit)"


def clean_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._@+-")[:64]
    return cleaned or "assessor"


def check_assessor(name: str) -> str:
    if NAME.fullmatch(name):
        return name
    bad = next((c for c in name if not re.fullmatch(r"[A-Za-z0-9._@+-]", c)), None)
    what = f"{bad!r} at position {name.index(bad) + 1}" if bad is not None else \
        ("nothing" if not name else f"{name[0]!r} first" if len(name) <= 64 else f"{len(name)} characters")
    raise LabError(f"--assessor {name!r} has {what}: an assessor name is written into every line of "
                   f"judgements.jsonl, the page's address and the agreement table, so it takes {ALLOWED}\n"
                   f"  fix: --assessor {clean_name(name)}")


def default_assessor() -> str:
    try:
        return clean_name(getpass.getuser())
    except (KeyError, OSError):  # no user name in this environment (a container without a passwd entry)
        return "assessor"


def check_overlap(share: float) -> float:
    if not (0.0 <= share <= 1.0) or math.isnan(share):
        raise LabError(f"--overlap {share} is not a share of the pool: give a number from 0 to 1, e.g. --overlap 0.1 "
                       "(every assessor judges that share of the units, to measure agreement)")
    return share


def in_overlap(key: tuple[str, str, int, int], share: float) -> bool:
    """Whether the unit is in the overlap share: a hash of the unit, the same in every process."""
    if share <= 0:
        return False
    digest = hashlib.sha256("\t".join(map(str, key)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < share


def agreement(units: dict[tuple, dict[str, int]]) -> list[dict]:
    """Cohen's kappa per pair of assessors over the units both graded: `units` maps a unit to {assessor: grade}."""
    from sklearn.metrics import cohen_kappa_score

    assessors = sorted({a for by in units.values() for a in by})
    out = []
    for a, b in itertools.combinations(assessors, 2):
        pairs = [(by[a], by[b]) for by in units.values() if a in by and b in by]
        if not pairs:
            continue
        x, y = [p[0] for p in pairs], [p[1] for p in pairs]
        out.append({"assessors": [a, b], "units": len(pairs),
                    "agree": sum(p == q for p, q in pairs) / len(pairs),
                    "kappa": _kappa(cohen_kappa_score, x, y, [0, 1, 2]),
                    "kappa_relevant": _kappa(cohen_kappa_score, [g >= 1 for g in x], [g >= 1 for g in y],
                                             [False, True])})
    return out


def _kappa(score, x, y, labels) -> float | None:
    """Kappa, or None where it is undefined (both gave one same label throughout: chance agreement is 1)."""
    if len(set(x) | set(y)) < 2:
        return None
    value = float(score(x, y, labels=labels))
    return None if math.isnan(value) else round(value, 4)


def agreement_lines(rows: list[dict]) -> list[str]:
    def k(v):
        return "n/a" if v is None else f"{v:.2f}"

    return [f"{r['assessors'][0]} / {r['assessors'][1]}: {r['units']} units judged by both, {r['agree']:.0%} the "
            f"same grade, Cohen's kappa {k(r['kappa'])} (relevant or not: {k(r['kappa_relevant'])})" for r in rows]
