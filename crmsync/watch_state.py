"""The watcher's memory of what it did: a small JSON file beside its configuration.

Why a file and not the store: it describes files on this machine's disk (paths, sizes, hashes),
which mean nothing to another watcher or user of a shared store, and keeping it must not need
admin rights or add audit entries.  Losing it costs one more ingestion of each copy, which the
store's exactly-once bookkeeping makes harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import InvalidInput
from .i18n import tr
from .xlsx_limits import shown

__all__ = ["STATE_VERSION", "WatchState", "file_digest"]

STATE_VERSION = 1


class WatchState:
    """What was last ingested from each copy, and which files are set aside: a small JSON file.

    ``copies[relpath]``: size, mtime_ns, blake2b hash, user, copy_id, time and counts of the
    last ingestion, how many times it was ingested, and whether a write-back is waiting for
    Excel to let go of the file.  ``problems[relpath]``: the same signature and the message.
    Written atomically after each change, so a crash loses at most the last entry.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.copies: dict[str, dict] = {}
        self.problems: dict[str, dict] = {}
        self.unmapped: dict[str, list] = {}
        self.damaged = False
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("version") == STATE_VERSION:
                    self.copies = dict(data.get("copies", {}))
                    self.problems = dict(data.get("problems", {}))
                    self.unmapped = dict(data.get("unmapped", {}))
            except (OSError, ValueError, AttributeError):
                self.damaged = True  # start afresh: every copy is ingested once more, harmlessly

    def save(self) -> None:
        if self.path is None:
            return
        data = {"version": STATE_VERSION, "copies": self.copies, "problems": self.problems,
                "unmapped": self.unmapped}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise InvalidInput(tr(f"无法写入监视状态文件 {shown(str(self.path))}：{exc.strerror or exc}",
                                  f"cannot write the watch state file {shown(str(self.path))}: {exc.strerror or exc}")) from None


def file_digest(path: Path) -> str:
    """The blake2b hash of a file's bytes (what was ingested, whatever its time stamp says)."""
    with open(path, "rb") as fp:
        return hashlib.file_digest(fp, "blake2b").hexdigest()[:32]
