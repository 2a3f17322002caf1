"""The user's language for messages: Chinese by default, English on request.

Messages are written where they arise as tr("中文", "English"); the CLI (--lang), the workbook
(CRMSYNC_LANG in xlwings.conf) or the environment (CRMSYNC_LANG) choose which one is shown.
"""

from __future__ import annotations

import os

_lang: str | None = None


def set_lang(lang: str | None) -> None:
    global _lang
    _lang = lang if lang in ("zh", "en") else None


def lang() -> str:
    return _lang or ("en" if os.environ.get("CRMSYNC_LANG") == "en" else "zh")


def tr(zh: str, en: str) -> str:
    """Return the message in the current language."""
    return en if lang() == "en" else zh
