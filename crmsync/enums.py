"""Enumeration look-ups: stable keys in records, labels in the workbook, synonyms on import.

The lists themselves are data (seeded from crmsync/data/enums.csv, then edited by the admin in the
store); this module only answers questions about a loaded set of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .schema import EnumItem, seed_enums


def _fold(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


class Enums:
    """A loaded set of enumerations.

    >>> e = Enums.seed()
    >>> e.normalise("customer_status", "流失")
    'lost'
    >>> e.label("customer_status", "lost", "en")
    'Lost'
    """

    def __init__(self, items: Iterable[EnumItem]):
        self.items: dict[str, list[EnumItem]] = {}
        self._lookup: dict[str, dict[str, str]] = {}
        for item in sorted(items, key=lambda i: (i.list_key, i.sort, i.key)):
            self.items.setdefault(item.list_key, []).append(item)
        for list_key, its in self.items.items():
            table: dict[str, str] = {}
            # keys and labels first, so a synonym can never shadow a real label
            for it in its:
                for spelling in (it.key, it.zh, it.en):
                    table.setdefault(_fold(spelling), it.key)
            for it in its:
                for spelling in it.synonyms:
                    table.setdefault(_fold(spelling), it.key)
            self._lookup[list_key] = table

    @classmethod
    def seed(cls) -> "Enums":
        return cls(seed_enums())

    def lists(self) -> list[str]:
        return sorted(self.items)

    def keys(self, list_key: str) -> list[str]:
        return [i.key for i in self.items.get(list_key, [])]

    def labels(self, list_key: str, lang: str = "zh") -> list[str]:
        """The drop-down values of a list, in order."""
        return [i.label(lang) for i in self.items.get(list_key, [])]

    def normalise(self, list_key: str, value: object) -> str | None:
        """Return the stable key for a key, label or synonym, or None when it is not in the list."""
        if value is None:
            return None
        return self._lookup.get(list_key, {}).get(_fold(value))

    def label(self, list_key: str, key: str | None, lang: str = "zh") -> str:
        """The label of a key in the workbook's language (the key itself if unknown)."""
        if key is None:
            return ""
        for it in self.items.get(list_key, []):
            if it.key == key:
                return it.label(lang)
        return str(key)
