"""The scoring model behind crmsync.dedupe: field kinds, normalising, blocking, weights.

See crmsync/dedupe.py for how the pieces fit.  Everything here works on whole columns (numpy
object arrays) so that 100,000s of candidate pairs are scored in a few vectorised calls.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, OSA

from .names import company_key, person_key, simplified

# ---- configuration ------------------------------------------------------------------------------

#: Field kinds and their agreement levels (besides "missing", which weighs nothing).
KINDS = {
    "id": ("exact", "close", "diff"),        # identity numbers, credit codes: 1 edit is a typo
    "phone": ("exact", "close", "diff"),
    "email": ("exact", "close", "diff"),
    "date": ("exact", "close", "diff"),      # 1 edit or a transposition
    "code": ("exact", "close", "diff"),      # postcodes, house numbers
    "company": ("exact", "close", "fair", "diff"),
    "person": ("exact", "close", "fair", "diff"),
    "text": ("exact", "close", "fair", "diff"),  # addresses: words in any order
    "place": ("exact", "close", "diff"),     # city, suburb, state
}
#: m: how often a true duplicate's field is at each level (fixed knowledge, never fitted).  A
#: company's phone or email often differs between two records of it (several contacts), so a
#: difference there is weak evidence; an identity number rarely does.
_M = {
    "id": (0.90, 0.07, 0.03), "phone": (0.70, 0.02, 0.28), "email": (0.70, 0.05, 0.25),
    "date": (0.88, 0.08, 0.04), "code": (0.90, 0.06, 0.04),
    "company": (0.80, 0.12, 0.05, 0.03), "person": (0.85, 0.08, 0.04, 0.03),
    "text": (0.75, 0.15, 0.05, 0.05), "place": (0.90, 0.06, 0.04),
}
#: u0: how often two different entities share a value by coincidence, whatever the data says
#: (an identity number is unique by design); and the fuzzy levels' u when the data is too small
#: to estimate them.
_U0 = {"id": 1e-7, "phone": 1e-6, "email": 1e-6, "date": 3e-5, "code": 1e-3, "company": 1e-5,
       "person": 1e-4, "text": 1e-5, "place": 1e-2}
_U_FUZZY = {"id": (1e-6,), "phone": (1e-5,), "email": (1e-5,), "date": (3e-4,), "code": (1e-2,),
            "company": (1e-4, 1e-3), "person": (5e-3, 3e-2), "text": (1e-3, 1e-2), "place": (2e-2,)}
#: Similarity a pair needs for the close and fair levels (rapidfuzz scores 0..1).
_CUT = {"company": (0.85, 0.70), "person": (0.92, 0.80), "text": (0.85, 0.70), "place": (0.90,),
        "email": (0.90,)}
_SAMPLE = 20_000  # random pairs used to estimate the fuzzy levels' u


@dataclass(frozen=True)
class FieldRule:
    """One compared field: the row key, its kind (KINDS) and the label evidence shows."""

    key: str
    kind: str
    label: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Config:
    """What to compare and how to find candidates.

    :param blocks: blocking keys; each a tuple of parts "field" (the normalised value),
        "field:N" (its first N characters) or "field:-N" (its last N).
    :param probability: a pair at or above this match probability is a duplicate.
    :param min_population: the prior assumes at least this many records, so a tiny data set
        does not make a coincidence look likely.
    """

    fields: tuple[FieldRule, ...]
    blocks: tuple[tuple[str, ...], ...]
    probability: float = 0.9
    max_block: int = 200
    min_population: int = 1000

    def rule(self, key: str) -> FieldRule:
        return next(f for f in self.fields if f.key == key)


@dataclass(slots=True)
class Match:
    """Two records judged (or suggested) to be the same: positions or ids, score 0..1, evidence."""

    a: object
    b: object
    score: float
    evidence: str
    weight: float = 0.0  # log2 Bayes factor, before the prior


@dataclass
class Result:
    pairs: list[Match]
    clusters: list[list[int]]
    stats: dict = field(default_factory=dict)


# ---- normalising by kind ------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NON_DIGIT = re.compile(r"\D+")
_SPACES = re.compile(r"[\s\u3000]+")
_PLACE_SUFFIX = re.compile(r"(?:省|市|区|县|自治州|地区)$")


_EMPTY_WORDS = frozenset(("nan", "none", "null", "#n/a"))


def _text(v) -> str:
    if type(v) is str and v.isascii():  # the common case: no width or script to fold
        s = v.strip().lower()
        return "" if s in _EMPTY_WORDS else s
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # a phone or code Excel holds as a number
    s = unicodedata.normalize("NFKC", str(v)).strip().lower()
    return "" if s in _EMPTY_WORDS else s


def _norm_id(v):
    s = _text(v)
    return (s if s.isalnum() and s.isascii() else _NON_ALNUM.sub("", s)) or None


def _norm_phone(v):
    d = _NON_DIGIT.sub("", _text(v))
    if len(d) == 13 and d.startswith("86"):
        d = d[2:]
    elif len(d) == 15 and d.startswith("0086"):
        d = d[4:]
    return d or None


def _norm_email(v):
    return _SPACES.sub("", _text(v)) or None


def _norm_date(v):
    if isinstance(v, (datetime, date)):
        return v.strftime("%Y%m%d")
    s = _text(v)
    m = re.fullmatch(r"(\d{4})\D(\d{1,2})\D(\d{1,2})(?:\D.*)?", s)
    if m:
        return f"{m[1]}{int(m[2]):02d}{int(m[3]):02d}"
    return _NON_DIGIT.sub("", s) or None


def _norm_company(v):
    return company_key(_text(v)).core or None


def _norm_person(v):
    return person_key(_text(v)) or None


def _norm_text(v):
    return simplified(_SPACES.sub(" ", _text(v))) or None


def _norm_place(v):
    s = _SPACES.sub("", simplified(_text(v)))
    return (_PLACE_SUFFIX.sub("", s) or s) or None


_NORM = {"id": _norm_id, "code": _norm_id, "phone": _norm_phone, "email": _norm_email,
         "date": _norm_date, "company": _norm_company, "person": _norm_person, "text": _norm_text,
         "place": _norm_place}


# ---- prepared data ------------------------------------------------------------------------------

class _Values(dict):
    """Per-field object arrays of normalised values (None where empty), built on first use."""

    def __init__(self, prepared: "Prepared"):
        super().__init__()
        self._p = prepared

    def __missing__(self, key):
        p = self._p
        if key not in p.codes:
            raise KeyError(key)
        codes = p.codes[key]
        out = np.empty(codes.size, dtype=object)
        ok = codes >= 0
        out[ok] = p.uniques[key][codes[ok]]
        self[key] = out
        return out


class Prepared:
    """A data set's configured fields, normalised: per field an integer code per record (-1 where
    empty) into a vocabulary of distinct normalised values.  Comparing codes is how exact
    agreement is found; strings are looked at only for the fuzzy levels.

    :param base: another Prepared (the store) whose vocabulary these codes extend, so that
        records of both can be compared.
    """

    def __init__(self, rows, cfg: Config, base: "Prepared | None" = None):
        import pandas as pd

        self.cfg, self.base = cfg, base
        columns = _columns(rows, [f.key for f in cfg.fields])
        self.n = len(next(iter(columns.values()))) if columns else 0
        self.codes: dict[str, np.ndarray] = {}
        self.uniques: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.extra: dict[str, np.ndarray] = {}  # company: (region, branch); phone: other numbers
        self._index: dict = {}
        self._parts: dict = {}
        self.values = _Values(self)
        for f in cfg.fields:
            raw = columns.get(f.key, [None] * self.n)
            # normalise each distinct raw value once; records keep integer codes (all in C)
            rcodes, runiq = _factorize(raw)
            rcodes = np.asarray(rcodes, dtype=np.int64)
            norm = _NORM[f.kind]
            normed = np.empty(len(runiq), dtype=object)
            if f.kind == "company":  # one parse gives the core and the branch
                parsed = [company_key(_text(v)) for v in runiq]
                normed[:] = [k.core or None for k in parsed]
            else:
                normed[:] = [norm(v) for v in runiq]
            ncodes, vocab = pd.factorize(normed, use_na_sentinel=True)
            vocab = np.asarray(vocab, dtype=object)
            if base is not None and f.key in base.codes:
                at = base.index(f.key).get_indexer(vocab)
                new = at < 0
                at[new] = len(base.uniques[f.key]) + np.arange(int(new.sum()))
                vocab = np.concatenate([base.uniques[f.key], vocab[new]])
                ncodes = np.where(ncodes >= 0, at[np.maximum(ncodes, 0)], -1)
            table = np.append(ncodes, -1).astype(np.int64)  # the last slot: empty cells
            self.codes[f.key] = table[rcodes]
            self.uniques[f.key] = vocab
            if f.kind == "company":
                extra = np.empty(len(runiq) + 1, dtype=object)
                extra[:-1] = [k.branch for k in parsed]
                extra[-1] = ""
                self.extra[f.key] = extra[rcodes]

    def index(self, key: str):
        """The field's vocabulary as a pandas Index (value → code)."""
        if key not in self._index:
            import pandas as pd

            self._index[key] = pd.Index(self.uniques[key])
        return self._index[key]

    def set_values(self, key: str, positions: list[int], values: list[str]) -> None:
        """Give records (normalised) values, extending the vocabulary where needed."""
        if not positions:
            return
        vals = np.empty(len(values), dtype=object)
        vals[:] = values
        at = self.index(key).get_indexer(vals)
        new = at < 0
        if new.any():
            import pandas as pd

            inverse, fresh = pd.factorize(vals[new])
            at[new] = len(self.uniques[key]) + inverse
            self.uniques[key] = np.concatenate([self.uniques[key], np.asarray(fresh, dtype=object)])
            self._index.pop(key, None)
        self.codes[key][np.asarray(positions)] = at
        self.values.pop(key, None)
        self.counts.pop(key, None)
        self._parts = {k: v for k, v in self._parts.items() if k.partition(":")[0] != key}

    def freq(self, key: str) -> np.ndarray:
        """How many records hold each record's value of a field (0 where empty)."""
        if key not in self.counts:
            codes = self.codes[key]
            per_code = np.bincount(codes[codes >= 0], minlength=len(self.uniques[key]) + 1)
            self.counts[key] = np.where(codes >= 0, per_code[np.maximum(codes, 0)], 0)
        return self.counts[key]

    def _part(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """(derived value per vocabulary entry, its code) of a blocking part like "name:3"."""
        if part not in self._parts:
            import pandas as pd

            key, _, cut = part.partition(":")
            vocab = self.uniques[key]
            n = int(cut) if cut else 0
            derived = np.empty(len(vocab), dtype=object)
            if n > 0:
                derived[:] = [v[:n] if len(v) >= n else None for v in vocab]
            elif n < 0:
                derived[:] = [v[n:] if len(v) > -n else None for v in vocab]
            else:
                derived[:] = vocab
            dcodes, _ = pd.factorize(derived, use_na_sentinel=True)
            self._parts[part] = (np.append(derived, None), np.append(dcodes, -1).astype(np.int64))
        return self._parts[part]

    def part_codes(self, part: str) -> np.ndarray:
        """Per record, the code of a blocking part's value (-1 where empty)."""
        return self._part(part)[1][self.codes[part.partition(":")[0]]]

    def block_values(self, part: str) -> np.ndarray:
        """Per record, a blocking part's value (object array, None where empty)."""
        key, _, cut = part.partition(":")
        if self.base is None or not cut:
            return self._part(part)[0][self.codes[key]] if cut else self.values[key]
        # rows matched against a store: derive from the few rows, not the store's vocabulary
        n = int(cut)
        out = np.empty(self.n, dtype=object)
        out[:] = [None if v is None or len(v) < abs(n) + (n < 0) else (v[:n] if n > 0 else v[n:])
                  for v in self.values[key]]
        return out


def _factorize(raw) -> tuple[np.ndarray, list]:
    """Codes (empty cells → -1, which indexes the last slot of a table) and distinct values."""
    import pandas as pd

    if isinstance(raw, pd.Series):
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        return codes, [None if v is pd.NA else v for v in uniques.tolist()]
    arr = np.empty(len(raw), dtype=object)
    arr[:] = raw
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    return codes, list(uniques)


def _columns(rows, keys: list[str]) -> dict[str, list]:
    """Columns of rows given as a list of dicts or a DataFrame."""
    if hasattr(rows, "columns") and hasattr(rows, "to_numpy"):
        return {k: rows[k] for k in keys if k in rows.columns} | \
               {k: [None] * len(rows) for k in keys if k not in rows.columns}
    rows = list(rows)
    return {k: [r.get(k) for r in rows] for k in keys}


# ---- blocking -----------------------------------------------------------------------------------

def _key_codes(p: Prepared, block: tuple[str, ...]) -> np.ndarray:
    """One integer per record for a blocking key of one or more parts (-1: a part is empty)."""
    combined = None
    for part in block:
        c = p.part_codes(part)
        if combined is None:
            combined = c.copy()
        else:
            bad = (combined < 0) | (c < 0)
            combined = combined * (int(c.max(initial=0)) + 1) + c
            combined[bad] = -1
    return combined


def _pairs_in_groups(codes: np.ndarray, max_block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Every pair (i < j) of records with the same code; groups larger than max_block skipped."""
    idx = np.nonzero(codes >= 0)[0]
    if idx.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    c = codes[idx]
    order = np.argsort(c)
    idx, c = idx[order], c[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sizes = np.diff(np.r_[starts, c.size])
    skipped = int(np.sum(sizes > max_block))
    out_i, out_j = [], []
    for s in np.unique(sizes):
        if s < 2 or s > max_block:
            continue
        g = starts[sizes == s]
        a, b = np.triu_indices(int(s), 1)
        out_i.append(idx[(g[:, None] + a[None, :]).ravel()])
        out_j.append(idx[(g[:, None] + b[None, :]).ravel()])
    if not out_i:
        return np.empty(0, np.int64), np.empty(0, np.int64), skipped
    return np.concatenate(out_i), np.concatenate(out_j), skipped


def candidate_pairs(p: Prepared) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct candidate pairs (i < j) of one data set from every blocking key."""
    keys = []
    stats = {"skipped_blocks": 0}
    for block in p.cfg.blocks:
        if any(part.partition(":")[0] not in p.codes for part in block):
            continue
        i, j, skipped = _pairs_in_groups(_key_codes(p, block), p.cfg.max_block)
        stats["skipped_blocks"] += skipped
        keys.append(np.minimum(i, j) * p.n + np.maximum(i, j))
    if not keys:
        return np.empty(0, np.int64), np.empty(0, np.int64), stats
    allk = np.sort(np.concatenate(keys))
    allk = allk[np.r_[True, allk[1:] != allk[:-1]]] if allk.size else allk
    stats["candidates"] = int(allk.size)
    return allk // p.n, allk % p.n, stats


# ---- scoring ------------------------------------------------------------------------------------

@dataclass
class _FieldModel:
    rule: FieldRule
    m: tuple
    u_fuzzy: tuple  # u of the levels between exact and diff
    u_diff: float
    weights: np.ndarray  # per level except exact: close[, fair], diff


def _similarity(kind: str, a: list, b: list) -> np.ndarray:
    if not a:
        return np.empty(0, np.float32)
    if kind in ("id", "phone", "code", "date"):  # edits, as a similarity of 1 - edits/2
        d = process.cpdist(a, b, scorer=OSA.distance, workers=-1)
        return 1.0 - np.minimum(d, 2).astype(np.float32) / 2.0
    if kind == "text":
        return process.cpdist(a, b, scorer=fuzz.token_set_ratio, workers=-1) / 100.0
    if kind == "email":
        la = [x.partition("@")[0] for x in a]
        lb = [x.partition("@")[0] for x in b]
        return process.cpdist(la, lb, scorer=JaroWinkler.normalized_similarity, workers=-1)
    return process.cpdist(a, b, scorer=JaroWinkler.normalized_similarity, workers=-1)


def _levels(kind: str, sim: np.ndarray) -> np.ndarray:
    """Level index (1 = close, 2 = fair, last = diff) of non-exact pairs from their similarity."""
    names = KINDS[kind]
    diff = len(names) - 1
    out = np.full(sim.shape, diff, dtype=np.int8)
    if kind in ("id", "phone", "code", "date"):
        out[sim >= 0.5] = 1  # one edit
        return out
    cuts = _CUT[kind]
    for level in range(len(cuts), 0, -1):
        out[sim >= cuts[level - 1]] = level
    return out


class Model:
    """The per-field weights of a data set (see the module docstring, step 3)."""

    def __init__(self, p: Prepared, seed: int = 0):
        self.cfg = p.cfg
        self.n = p.n
        self.population = max(p.n, p.cfg.min_population)
        self.fields: list[_FieldModel] = []
        rng = np.random.default_rng(seed)
        sample = min(_SAMPLE, p.n * (p.n - 1) // 2)
        si = rng.integers(0, max(p.n, 1), sample) if sample >= 5_000 else None
        sj = rng.integers(0, max(p.n, 1), sample) if sample >= 5_000 else None
        for rule in self.cfg.fields:
            m = _M[rule.kind]
            nfuzzy = len(m) - 2
            u_fuzzy = _U_FUZZY[rule.kind][:nfuzzy]
            u_diff = 1.0
            if si is not None:
                ca, cb = p.codes[rule.key][si], p.codes[rule.key][sj]
                ok = (ca >= 0) & (cb >= 0) & (si != sj)
                ca, cb = ca[ok], cb[ok]
                a, b = p.uniques[rule.key][ca], p.uniques[rule.key][cb]
                if a.size >= 1_000:
                    exact = ca == cb
                    lv = np.full(a.size, 0, np.int8)
                    rest = ~exact
                    lv[rest] = _levels(rule.kind, _similarity(rule.kind, list(a[rest]), list(b[rest])))
                    counts = np.bincount(lv, minlength=len(m))
                    u_fuzzy = tuple(max((counts[k] + 0.5) / (a.size + 1), u_fuzzy[k - 1])
                                    for k in range(1, nfuzzy + 1))
                    u_diff = counts[-1] / a.size
            u_diff = max(u_diff, 0.5)
            w = [math.log2(m[k] / u_fuzzy[k - 1]) for k in range(1, nfuzzy + 1)]
            w.append(math.log2(m[-1] / u_diff))
            self.fields.append(_FieldModel(rule, m, u_fuzzy, u_diff, np.array(w)))

    @property
    def threshold(self) -> float:
        """The log2 Bayes factor at which a pair reaches the configured probability."""
        p = self.cfg.probability
        return math.log2(self.population) + math.log2(p / (1 - p))

    def probability(self, weight):
        return 1.0 / (1.0 + np.exp2(math.log2(self.population) - np.asarray(weight, dtype=float)))

    def exact_weights(self, fm: _FieldModel, ref: Prepared, positions: np.ndarray, same: bool) -> np.ndarray:
        """The weight of exact agreement on the values of ref's records at positions: the more
        other records share a value, the less agreeing on it says.  "Other" leaves out the pair
        itself: both records when they come from the same data set (same), else the one in ref."""
        others = np.maximum(ref.freq(fm.rule.key)[positions] - (2 if same else 1), 0)
        return np.log2(fm.m[0] / (_U0[fm.rule.kind] + others / self.population))


def score_pairs(model: Model, left: Prepared, li: np.ndarray, right: Prepared, ri: np.ndarray,
                *, prune_below: float | None = None, explain: bool = False):
    """Return (kept positions, total weights, level matrix) for candidate pairs left[li]–right[ri].

    With prune_below, pairs that can no longer reach that weight are dropped as soon as that is
    known, so similarities are computed only where they can matter.  Levels: 0 exact, 1.. as
    KINDS, -1 missing; the level matrix is returned only with explain.
    """
    if right is not left and right.base is not left:
        raise ValueError("right must be left or a Prepared built with base=left")
    n = li.size
    keep = np.arange(n)
    total = np.zeros(n)
    best_left = np.zeros(n)  # the most the unscored fields could still add
    present, exact, bests = [], [], []
    for fm in model.fields:
        ca, cb = left.codes[fm.rule.key][li], right.codes[fm.rule.key][ri]
        pr = (ca >= 0) & (cb >= 0)
        ex = pr & (ca == cb)
        present.append(pr)
        exact.append(ex)
        w_ex = np.zeros(n)
        if ex.any():
            w_ex[ex] = model.exact_weights(fm, left, li[ex], right is left)
        total += w_ex
        # not exact but present: at most the close level
        best = fm.weights[0]
        if fm.rule.key + "#all" in left.extra or fm.rule.key + "#all" in right.extra:
            best = max(best, math.log2(fm.m[0] / _U0[fm.rule.kind]))  # another number may agree
        best_left += np.where(pr & ~ex, best, 0.0)
        bests.append(best)
    levels = np.full((n, len(model.fields)), -1, np.int8) if explain else None
    if explain:
        for k, (pr, ex) in enumerate(zip(present, exact)):
            levels[pr, k] = np.where(ex[pr], 0, 127)
    # fuzzy fields, most informative first
    order = sorted(range(len(model.fields)), key=lambda k: -model.fields[k].weights[0])
    for k in order:
        fm = model.fields[k]
        if prune_below is not None:
            alive = total[keep] + best_left[keep] >= prune_below
            keep = keep[alive]
        todo = keep[present[k][keep] & ~exact[k][keep]]
        if todo.size == 0:
            continue
        a = left.uniques[fm.rule.key][left.codes[fm.rule.key][li[todo]]]
        b = right.uniques[fm.rule.key][right.codes[fm.rule.key][ri[todo]]]
        lv = _levels(fm.rule.kind, _similarity(fm.rule.kind, a.tolist(), b.tolist()))
        if fm.rule.kind in ("phone", "email"):
            lv = _other_numbers(lv, left, li[todo], right, ri[todo], fm.rule.key)
        w = fm.weights[lv - 1]
        if (lv == 0).any():  # another of its numbers (phones) agrees exactly
            w = np.where(lv == 0, math.log2(fm.m[0] / _U0[fm.rule.kind]), w)
        total[todo] += w
        best_left[todo] -= bests[k]
        if explain:
            levels[todo, k] = lv
    if prune_below is not None:
        keep = keep[total[keep] >= prune_below]
    total += _company_extra(model, left, li, right, ri)
    if explain and levels is not None:
        levels[levels == 127] = 0
    return keep, total[keep], (levels[keep] if explain else None)


def _other_numbers(lv, left, li, right, ri, key):
    """A phone or email matches when any of either side's other ones (its contacts') is the same.

    Only records holding more than one number are looked at (``key#multi``), in Python."""
    la, ra = left.extra.get(key + "#all"), right.extra.get(key + "#all")
    if la is None and ra is None:
        return lv
    many = np.zeros(lv.size, bool)
    for side, pos in ((left, li), (right, ri)):
        multi = side.extra.get(key + "#multi")
        if multi is not None:
            many |= multi[pos]
    for t in np.flatnonzero(many).tolist():
        x = la[li[t]] if la is not None else (left.values[key][li[t]],)
        y = ra[ri[t]] if ra is not None else (right.values[key][ri[t]],)
        if x and y and set(x) & set(y):
            lv[t] = 0
    return lv


def _company_extra(model, left, li, right, ri) -> np.ndarray:
    """A branch office is not its head office: a different branch weighs against a match."""
    out = np.zeros(li.size)
    for fm in model.fields:
        if fm.rule.kind != "company" or fm.rule.key not in left.extra:
            continue
        ea, eb = left.extra[fm.rule.key][li], right.extra[fm.rule.key][ri]
        if ea.size == 0:
            continue
        out -= np.where(ea != eb, 4.0, 0.0)
    return out
