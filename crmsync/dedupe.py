"""Finding duplicate records: inside one data set, between new rows and the store, across the store.

    cfg = customer_config()                       # or Config(fields=..., blocks=...) for any data
    result = find_duplicates(rows, cfg)           # rows: list of dicts (or a DataFrame)
    result.pairs                                  # [Match(a, b, score, evidence), ...]
    result.clusters                               # [[0, 7, 12], ...] row positions
    find_store_matches(store, rows)               # per incoming row: likely existing duplicates
    customer_matches(store, {"customer_name": ..., "mobile": ...})   # what CRM_DUPES asks

How it works (a Fellegi–Sunter record-linkage model with fixed, untrained settings):

1. **Normalise** each configured field by its kind (``KINDS``): company names without legal
   suffixes, branches, regions, width and traditional characters (crmsync.names); person names
   folded; phones and ids as digits; dates as YYYYMMDD.
2. **Block**: candidate pairs are only the records that agree exactly on at least one blocking
   key, each key made of one or two fields (``Config.blocks``); a key value shared by more than
   ``max_block`` records is skipped (it says nothing).  Work grows with the records, not their square.
3. **Score** each candidate pair field by field: the agreement level (exact / close / fair /
   different / missing) gives a weight log2(m/u), where m is how often a true duplicate agrees at
   that level (fixed per kind, ``_M``) and u how often two different records do — estimated
   from the data itself: the exact level from how common the value is (so "smith" counts less
   than "mccarthy"), the fuzzy levels from random pairs.  Similarities come from rapidfuzz,
   computed for many pairs in one vectorised call, and only for pairs that could still reach the
   threshold.  The sum is a Bayes factor; with a prior of one duplicate per record among
   ``max(N, min_population)`` it becomes a probability, and a pair is a match at ≥ ``probability``.
4. **Cluster** matched pairs; a component of more than two records is split again by average
   linkage over the direct scores of all its pairs, so one weak link never joins two groups
   whose members otherwise disagree.

Every pair carries its score and its evidence (which fields agreed, how, and which disagreed).
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

from .dedupe_model import (KINDS, Config, FieldRule, Match, Model, Prepared, Result, candidate_pairs,
                           score_pairs)
from .i18n import tr

__all__ = ["Config", "FieldRule", "KINDS", "Match", "Result", "customer_config", "customer_matches",
           "find_duplicates", "find_store_matches", "score_pairs"]


def customer_config(probability: float = 0.9) -> Config:
    """The configuration for customers, from crmsync.schema's field types."""
    from .schema import CUSTOMER

    by_type = {"credit_code": "id", "id_number": "id", "mobile": "phone", "phone": "phone",
               "email": "email"}
    fields = []
    for f in CUSTOMER.fields:
        kind = by_type.get(f.type)
        if f.key == "customer_name":
            kind = "company"
        elif f.key == "contact_name":
            kind = "person"
        elif f.key in ("province", "city", "district"):
            kind = "place"
        elif f.key == "address":
            kind = "text"
        if kind:
            fields.append(FieldRule(f.key, kind, f.zh))
    # a typo in the name's first characters is caught by its end, which alone is too common
    # (…电子, …科技): so the end goes with the city or the contact's first character
    blocks = (("credit_code",), ("id_number",), ("mobile",), ("phone",), ("email",),
              ("customer_name",), ("customer_name:3",), ("customer_name:-3", "city"),
              ("customer_name:-3", "contact_name:1"), ("contact_name", "city"),
              ("contact_name", "customer_name:1"))
    return Config(tuple(fields), blocks, probability=probability)


# ---- evidence -----------------------------------------------------------------------------------

_LEVEL_WORDS = {"exact": ("相同", "same"), "close": ("相近", "close"), "fair": ("相似", "similar"),
                "diff": ("不同", "different")}


def evidence_texts(model: Model, levels: np.ndarray) -> list[str]:
    """“手机号相同; 客户名称相近; 城市不同” for each pair's levels (rows of a level matrix)."""
    en = tr("zh", "en") == "en"
    words = []
    for fm in model.fields:
        label = fm.rule.key if en else (fm.rule.label or fm.rule.key)
        words.append([f"{label} {_LEVEL_WORDS[name][1]}" if en else f"{label}{_LEVEL_WORDS[name][0]}"
                      for name in KINDS[fm.rule.kind]])
    if levels.size == 0:
        return [""] * len(levels)
    patterns, which = np.unique(levels, axis=0, return_inverse=True)
    texts = ["; ".join(words[k][lv] for k, lv in enumerate(row) if lv >= 0) for row in patterns.tolist()]
    return [texts[w] for w in which.ravel().tolist()]


# ---- clustering ---------------------------------------------------------------------------------

#: Components up to this size are re-split by average linkage over all their pairs.
MAX_CHECKED_COMPONENT = 300


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A component label per record (the smallest position in it), by label propagation."""
    labels = np.arange(n)
    if i.size == 0:
        return labels
    while True:
        m = np.minimum(labels[i], labels[j])
        new = labels.copy()
        np.minimum.at(new, i, m)
        np.minimum.at(new, j, m)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def _average_linkage(members: list[int], weight: np.ndarray, threshold: float, linked: np.ndarray) -> list[list[int]]:
    """Split one component: merge the two groups with the highest average direct weight while
    that average reaches the threshold and a matched pair joins them."""
    s = len(members)
    if weight[np.triu_indices(s, 1)].min() >= threshold:
        return [sorted(members)]
    groups = [[k] for k in range(s)]
    while len(groups) > 1:
        best, best_pair = -math.inf, None
        for x in range(len(groups)):
            for y in range(x + 1, len(groups)):
                block = np.ix_(groups[x], groups[y])
                if not linked[block].any():
                    continue
                avg = weight[block].mean()
                if avg > best:
                    best, best_pair = avg, (x, y)
        if best_pair is None or best < threshold:
            break
        x, y = best_pair
        groups[x] = groups[x] + groups[y]
        del groups[y]
    return [sorted(members[k] for k in g) for g in groups if len(g) > 1]


def find_duplicates(rows, cfg: Config | None = None, *, progress=None) -> Result:
    """Duplicates inside one data set: every pair judged to be the same record, and the clusters.

    :param rows: a list of dicts or a DataFrame with the configured field keys.
    :param progress: optional callable(step text) for long runs.
    Pairs are (position, position) with a < b, each with its score and evidence.
    """
    cfg = cfg or customer_config()
    say = progress or (lambda text: None)
    say(tr("正在规范化…", "normalising…"))
    p = Prepared(rows, cfg)
    model = Model(p)
    say(tr("正在分块…", "blocking…"))
    ci, cj, stats = candidate_pairs(p)
    say(tr(f"正在比较 {ci.size} 对候选…", f"comparing {ci.size} candidate pairs…"))
    threshold = model.threshold
    keep, weight, _ = score_pairs(model, p, ci, p, cj, prune_below=threshold)
    mi, mj = ci[keep], cj[keep]
    stats.update(matched_pairs=int(mi.size), threshold=threshold, records=p.n)
    say(tr("正在聚类…", "clustering…"))
    labels = _clusters(model, p, mi, mj, threshold)
    pairs, clusters = _cluster_pairs(model, p, labels)
    stats["clusters"] = len(clusters)
    return Result(pairs, clusters, stats)


def _groups(labels: np.ndarray):
    """(positions ordered by label, group starts, group sizes) of the labels ≥ 0 shared by ≥ 2."""
    idx = np.nonzero(labels >= 0)[0]
    order = idx[np.argsort(labels[idx])]
    lab = labels[order]
    if lab.size == 0:
        return order, np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    sizes = np.diff(np.r_[starts, lab.size])
    keep = sizes >= 2
    return order, starts[keep], sizes[keep]


def _pairs_of_groups(order, starts, sizes, limit: int | None = None):
    """Every pair inside each group, as (i, j, group start), vectorised by group size."""
    pi, pj, pg = [], [], []
    for size in np.unique(sizes):
        if limit is not None and size > limit:
            continue
        g = starts[sizes == size]
        a, b = np.triu_indices(int(size), 1)
        pi.append(order[(g[:, None] + a).ravel()])
        pj.append(order[(g[:, None] + b).ravel()])
        pg.append(np.repeat(g, a.size))
    if not pi:
        e = np.empty(0, np.int64)
        return e, e, e
    i, j = np.concatenate(pi), np.concatenate(pj)
    return np.minimum(i, j), np.maximum(i, j), np.concatenate(pg)


def _clusters(model: Model, p: Prepared, mi: np.ndarray, mj: np.ndarray, threshold: float) -> np.ndarray:
    """A cluster label per record (-1: no duplicate) from the matched pairs.  A component of
    more than two records is kept whole when every pair of its members reaches the threshold
    directly; otherwise it is split by average linkage (_average_linkage)."""
    labels = _components(p.n, mi, mj)
    sizes = np.bincount(labels, minlength=p.n)
    labels = np.where(sizes[labels] >= 2, labels, -1)
    order, starts, sz = _groups(labels)
    big = sz > 2
    if not big.any():
        return labels
    ai, aj, ag = _pairs_of_groups(order, starts[big], sz[big], MAX_CHECKED_COMPONENT)
    _, w, _ = score_pairs(model, p, ai, p, aj)
    # the weakest direct pair of each component decides whether it needs splitting
    weakest = {}
    if ag.size:
        srt = np.argsort(ag, kind="stable")
        g_sorted, w_sorted = ag[srt], w[srt]
        first = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
        weakest = dict(zip(g_sorted[first].tolist(), np.minimum.reduceat(w_sorted, first).tolist()))
    weights = None
    matched = None
    next_label = p.n
    for start, size in zip(starts[big].tolist(), sz[big].tolist()):
        if weakest.get(start, -math.inf) >= threshold:
            continue  # every pair matches directly: one cluster as it is
        ms = sorted(order[start:start + size].tolist())
        labels[ms] = -1
        if weights is None:
            weights = dict(zip(zip(ai.tolist(), aj.tolist()), w.tolist()))
            matched = set(zip(mi.tolist(), mj.tolist()))
        if size > MAX_CHECKED_COMPONENT:  # too big to check every pair: keep the strongest links
            used: set = set()
            members = set(ms)
            for a, b in (x for x in matched if x[0] in members):
                if a not in used and b not in used:
                    used.update((a, b))
                    labels[[a, b]] = next_label
                    next_label += 1
            continue
        wm = np.zeros((size, size))
        linked = np.zeros((size, size), bool)
        for x in range(size):
            for y in range(x + 1, size):
                wm[x, y] = wm[y, x] = weights[(ms[x], ms[y])]
                linked[x, y] = linked[y, x] = (ms[x], ms[y]) in matched
        for group in _average_linkage(ms, wm, threshold, linked):
            labels[group] = next_label
            next_label += 1
    return labels


def _cluster_pairs(model: Model, p: Prepared, labels: np.ndarray) -> tuple[list[Match], list[list[int]]]:
    """Every pair inside each cluster, with its direct score and evidence; and the clusters."""
    order, starts, sizes = _groups(labels)
    flat = order.tolist()
    clusters = sorted(sorted(flat[s:s + z]) for s, z in zip(starts.tolist(), sizes.tolist()))
    ai, aj, _ = _pairs_of_groups(order, starts, sizes)
    if ai.size == 0:
        return [], clusters
    _, w, levels = score_pairs(model, p, ai, p, aj, explain=True)
    prob = model.probability(w)
    texts = evidence_texts(model, levels)
    pairs = [Match(a, b, s, t, wt) for a, b, s, t, wt in zip(ai.tolist(), aj.tolist(), prob.tolist(), texts, w.tolist())]
    return pairs, clusters


# ---- against the store --------------------------------------------------------------------------

class _BlockIndex:
    """One blocking key over the store's customers, sorted for vectorised look-ups."""

    def __init__(self, parts: tuple[str, ...], columns: list[np.ndarray], positions: np.ndarray, max_block: int):
        import pandas as pd

        self.parts, self.max_block = parts, max_block
        self.vocab, self.radix = [], []
        combined = None
        for values in columns:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            self.vocab.append(pd.Index(uniques))
            self.radix.append(len(uniques) + 1)
            combined = _mix(combined, codes.astype(np.int64), len(uniques) + 1)
        ok = combined >= 0
        order = np.argsort(combined[ok], kind="stable")
        self.codes = combined[ok][order]
        self.positions = positions[ok][order]

    def lookup(self, q: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """(store positions, query positions) of the records sharing this key."""
        combined = None
        for part, vocab, radix in zip(self.parts, self.vocab, self.radix):
            values = q.block_values(part)
            codes = vocab.get_indexer(values).astype(np.int64)
            codes[values == None] = -1  # noqa: E711
            combined = _mix(combined, codes, radix)
        lo = np.searchsorted(self.codes, combined, "left")
        hi = np.searchsorted(self.codes, combined, "right")
        counts = np.where((combined >= 0) & (hi - lo <= self.max_block), hi - lo, 0)
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        qpos = np.repeat(np.arange(combined.size), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        return self.positions[np.repeat(lo, counts) + offsets], qpos


def _mix(combined, codes, radix):
    if combined is None:
        return codes
    out = combined * radix + codes
    out[(combined < 0) | (codes < 0)] = -1
    return out


class StoreIndex:
    """The store's live customers prepared for matching, rebuilt when the store changes."""

    def __init__(self, store, cfg: Config):
        from sqlalchemy import select

        from .tables import ENTITY_TABLES

        self.cfg = cfg
        cust, cont = ENTITY_TABLES["customer"], ENTITY_TABLES["contact"]
        keys = [f.key for f in cfg.fields]
        with store.engine.connect() as conn:
            rows = conn.execute(select(cust.c.customer_id, *[cust.c[k] for k in keys])
                                .where(cust.c.deleted.is_(False)).order_by(cust.c.customer_id)).all()
            contacts = conn.execute(select(cont.c.customer_id, cont.c.mobile, cont.c.phone, cont.c.email)
                                    .where(cont.c.deleted.is_(False))).all()
        self.ids = [r[0] for r in rows]
        self.prep = Prepared([dict(zip(keys, r[1:])) for r in rows], cfg)
        self._add_contacts(contacts)
        self.model = Model(self.prep)
        n = self.prep.n
        self.blocks = []
        for parts in cfg.blocks:
            if any(x.partition(":")[0] not in self.prep.codes for x in parts):
                continue
            alls = self.prep.extra.get(parts[0] + "#all") if len(parts) == 1 else None
            if alls is not None:  # every number of the customer and its contacts
                pos = np.fromiter((i for i, xs in enumerate(alls) for _ in xs), np.int64)
                vals = np.array([x for xs in alls for x in xs], dtype=object)
                self.blocks.append(_BlockIndex(parts, [vals], pos, cfg.max_block))
            else:
                self.blocks.append(_BlockIndex(parts, [self.prep.block_values(x) for x in parts],
                                               np.arange(n), cfg.max_block))

    def _add_contacts(self, contacts) -> None:
        """Phones and emails of each customer's contacts count as the customer's own."""
        from .dedupe_model import _NORM

        where = {cid: i for i, cid in enumerate(self.ids)}
        kinds = {f.key: f.kind for f in self.cfg.fields if f.kind in ("phone", "email")}
        numbers: dict[str, list[set]] = {k: [set() for _ in self.ids] for k in kinds}
        for key, kind in kinds.items():
            for i, v in enumerate(self.prep.values[key]):
                if v is not None:
                    for k2 in numbers:
                        if kinds[k2] == kind:
                            numbers[k2][i].add(v)  # a mobile typed as the landline still matches
        for cid, mobile, landline, email in contacts:
            i = where.get(cid)
            if i is None:
                continue
            for key, kind in kinds.items():
                for raw in ((mobile, landline) if kind == "phone" else (email,)):
                    v = _NORM[kind](raw) if raw else None
                    if v:
                        numbers[key][i].add(v)
        for key, sets in numbers.items():
            alls = np.empty(len(sets), dtype=object)
            alls[:] = [tuple(sorted(s)) for s in sets]
            self.prep.extra[key + "#all"] = alls
            self.prep.extra[key + "#multi"] = np.fromiter((len(x) > 1 for x in alls), bool, len(alls))
            codes = self.prep.codes[key]
            fill = [(i, min(s)) for i, s in enumerate(sets) if s and codes[i] < 0]
            self.prep.set_values(key, [i for i, _ in fill], [v for _, v in fill])

    def match(self, rows) -> list[list[Match]]:
        """Per row: the customers it likely duplicates, best first."""
        q = Prepared(rows, self.cfg, base=self.prep)
        found: list[list[Match]] = [[] for _ in range(q.n)]
        if q.n == 0 or self.prep.n == 0:
            return found
        li, ri = [], []
        for block in self.blocks:
            a, b = block.lookup(q)
            li.append(a), ri.append(b)
        li, ri = np.concatenate(li), np.concatenate(ri)
        if li.size == 0:
            return found
        key = np.sort(ri.astype(np.int64) * max(self.prep.n, 1) + li)
        key = key[np.r_[True, key[1:] != key[:-1]]]
        ri, li = key // max(self.prep.n, 1), key % max(self.prep.n, 1)
        threshold = self.model.threshold
        keep, weight, levels = score_pairs(self.model, self.prep, li, q, ri, prune_below=threshold, explain=True)
        prob = self.model.probability(weight)
        for store_pos, row, p, w, text in zip(li[keep].tolist(), ri[keep].tolist(), prob.tolist(),
                                              weight.tolist(), evidence_texts(self.model, levels)):
            found[row].append(Match(self.ids[store_pos], row, p, text, w))
        for matches in found:
            matches.sort(key=lambda m: (-m.weight, m.a))
        return found


_indexes: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_index_lock = threading.Lock()


def _store_state(store) -> tuple:
    """Changes whenever anything is written: every write appends to the audit chain."""
    from sqlalchemy import select

    from .tables import audit_head

    with store.engine.connect() as conn:
        return tuple(conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first() or ())


def store_index(store, cfg: Config | None = None) -> StoreIndex:
    """The store's prepared customers, built once per store state."""
    cfg = cfg or customer_config()
    state = _store_state(store)
    with _index_lock:
        cached = _indexes.get(store)
        if cached is not None and cached[0] == state and cached[1].cfg == cfg:
            return cached[1]
        index = StoreIndex(store, cfg)
        _indexes[store] = (state, index)
        return index


def find_store_matches(store, rows: list[dict], cfg: Config | None = None) -> list[list[Match]]:
    """For each incoming (normalised) customer row, the existing customers it likely duplicates.

    Each Match has ``a`` = the existing customer_id, ``b`` = the row's position in ``rows``,
    ``score`` = match probability (≥ the configured probability, 0.9), ``evidence`` = which
    fields agreed and how.  Best first.  Deleted (and merged) customers are not matched.
    """
    return store_index(store, cfg).match(rows)


def customer_matches(store, values: dict) -> list[tuple[str, float, str]]:
    """(customer_id, score, evidence) of existing customers these values likely duplicate,
    best first — what the worksheet function CRM_DUPES shows (crmsync.lookup)."""
    row = {k: v for k, v in values.items() if v not in (None, "")}
    if not row:
        return []
    return [(m.a, m.score, m.evidence) for m in find_store_matches(store, [row])[0]]
