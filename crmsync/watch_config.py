"""The folder watcher's configuration: which copy in the watched folder belongs to whom.

A copy's owner comes from where it lives, never from what the file says about itself (DESIGN.md
§5), so the admin maps files and sub-folders to users in a TOML file, by default
``crmsync-watch.toml`` in the watched folder (``crmsync watch FOLDER --config F`` for another)::

    # crmsync-watch.toml
    store = "../crm.db"          # optional; relative to this file; --store / CRMSYNC_STORE win
    write_back = false           # write new ids and versions back into copies Excel does not hold open
    settle_seconds = 0.5         # a saved file must keep its size and time this long before it is read
    patterns = ["*.xlsm", "*.xlsx"]

    [files]                      # one file -> its user (paths relative to the watched folder)
    "zhang.xlsm" = "zhang"
    "laptops/li-home.xlsm" = { user = "li", copy = "li-home" }

    [folders]                    # every workbook under a sub-folder -> its user
    "south" = "liu"

A file entry wins over a folder entry, and a deeper folder over a shallower one; ``"." = "admin"``
under [folders] maps everything not mapped otherwise.  The copy's identity (``copy_id``, under
which the store remembers the rows it has already created from this copy) is the file's full
path, as ``crmsync checkout`` and ``crmsync sync`` name it, or the entry's ``copy`` when given:
give one to a copy that will move (another folder, another machine), so it keeps its identity.
Workbooks that no entry maps are reported and never read.

The watcher keeps its own small files beside the configuration: ``<name>.state.json`` (what it
last ingested from each copy) and ``<name>.log`` (what it did).

Whoever can write this file decides who each copy is synced as, so on POSIX systems a
configuration that others can change (the file writable by group or others, owned by another
user, or in a folder others can write without the sticky bit, where they could replace it) is
refused, at start and on every reload.  Reps need to write the watched folder, so in a shared
folder the configuration belongs elsewhere (``--config``).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import InvalidInput, NotFound
from .i18n import tr
from .xlsx_limits import shown

CONFIG_NAME = "crmsync-watch.toml"
DEFAULT_PATTERNS = ("*.xlsm", "*.xlsx")
DEFAULT_SETTLE = 0.5
_KEYS = {"store", "write_back", "settle_seconds", "patterns", "files", "folders", "state", "log"}

SAMPLE = '''# crmsync-watch.toml — which workbook copy in this folder belongs to which user.
# Paths are relative to the watched folder; a file entry wins over a folder entry.
# store = "crm.db"            # relative to this file; --store / CRMSYNC_STORE win
write_back = false            # true: write new ids/versions back into copies Excel does not hold open
settle_seconds = 0.5          # a saved file must keep its size and time this long before it is read

[files]
{files}
[folders]
# "south" = "liu"             # every workbook under south/ belongs to liu
'''


@dataclass(frozen=True)
class CopyMapping:
    """Who a copy belongs to and the identity the store knows it by."""

    user: str
    copy_id: str | None = None  # None: the file's resolved path (what checkout and sync use)


@dataclass
class WatchConfig:
    """The parsed configuration file; ``resolve(relpath)`` maps a file to its CopyMapping."""

    path: Path
    files: dict[str, CopyMapping] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    store: str | None = None
    write_back: bool = False
    settle_seconds: float = DEFAULT_SETTLE
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    state_path: Path | None = None
    log_path: Path | None = None

    def resolve(self, relpath: str) -> CopyMapping | None:
        """The mapping of a file (path relative to the watched folder, '/' separated), or None."""
        if relpath in self.files:
            return self.files[relpath]
        parents = PurePosixPath(relpath).parents
        for parent in parents:  # deepest first
            key = str(parent)
            if key in self.folders:
                return CopyMapping(self.folders[key])
        return None

    def users(self) -> set[str]:
        return {m.user for m in self.files.values()} | set(self.folders.values())

    def is_workbook_name(self, name: str) -> bool:
        """True for a name the watcher reads: matches the patterns and is no lock or temporary file."""
        return not is_ignored_name(name) and any(fnmatch.fnmatch(name.lower(), p.lower()) for p in self.patterns)


def is_ignored_name(name: str) -> bool:
    """Excel's lock (``~$…``) and temporary files, LibreOffice locks, hidden and backup files."""
    lower = name.lower()
    return (lower.startswith(("~$", "~", ".")) or lower.endswith((".tmp", "~", "#"))
            or (len(name) == 8 and all(c in "0123456789ABCDEFabcdef" for c in name)))  # Excel's save temp


def lock_files(path: Path) -> list[Path]:
    """The files whose presence says another program holds ``path`` open.

    Excel writes ``~$`` + the name beside the file (long names lose their first two characters);
    LibreOffice writes ``.~lock.<name>#``.
    """
    name = path.name
    return [path.with_name("~$" + name), path.with_name("~$" + name[2:]), path.with_name(f".~lock.{name}#")]


def is_held_open(path: Path) -> bool:
    """True when a lock file beside ``path`` says Excel (or LibreOffice) has it open."""
    return any(p.exists() for p in lock_files(path))


def locked_target(lock: Path) -> list[Path]:
    """The workbook files a lock file may belong to (for a ``~$`` name, the two Excel spellings)."""
    name = lock.name
    if name.startswith(".~lock.") and name.endswith("#"):
        return [lock.with_name(name[len(".~lock."):-1])]
    if name.startswith("~$"):
        rest = name[2:]
        folder = lock.parent
        found = [folder / rest]
        try:
            found += [p for p in folder.iterdir() if len(p.name) == len(rest) + 2 and p.name[2:] == rest]
        except OSError:
            pass
        return found
    return []


def config_path(folder: Path, config: str | Path | None) -> Path:
    """The configuration file: ``config`` if given, else crmsync-watch.toml in the folder."""
    return Path(config) if config else folder / CONFIG_NAME


def others_can_write(path: Path) -> str | None:
    """Why someone other than the watcher's own user could change path (None when nobody can).

    POSIX only: on Windows the mode bits say nothing about who may write, and NTFS permissions
    are the admin's to set (README).
    """
    if os.name != "posix":
        return None
    me = os.geteuid()
    st = path.stat()
    if st.st_uid not in (me, 0):
        return tr(f"文件属于另一个用户（uid {st.st_uid}）", f"the file belongs to another user (uid {st.st_uid})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return tr(f"文件可被组或其他用户写入（权限 {stat.filemode(st.st_mode)}）",
                  f"the file is writable by its group or others ({stat.filemode(st.st_mode)})")
    folder = path.resolve().parent.stat()
    if folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not folder.st_mode & stat.S_ISVTX:
        return tr(f"所在文件夹可被组或其他用户写入（权限 {stat.filemode(folder.st_mode)}），他们可以替换这个文件",
                  f"its folder is writable by its group or others ({stat.filemode(folder.st_mode)}), "
                  f"so they could replace it")
    return None


def refuse_if_others_can_write(path: Path) -> None:
    """Raise InvalidInput when someone other than the watcher's user could rewrite the map."""
    why = others_can_write(path)
    if why:
        raise InvalidInput(tr(
            f"监视配置 {shown(str(path))} 不安全：{why}。能改它的人就能决定副本以哪个用户同步。"
            f"请执行 chmod 644 并放在只有管理员能写的文件夹里，或用 --config 指定别处的配置",
            f"watch configuration {shown(str(path))} is not safe: {why}. Whoever can change it decides "
            f"which user each copy is synced as. chmod 644 it in a folder only the admin can write, "
            f"or pass --config with one kept elsewhere"))


def load_config(path: Path) -> WatchConfig:
    """Read and check a watch configuration file.

    Raises NotFound when the file does not exist and InvalidInput naming the file and the entry
    when it cannot be used.
    """
    if not path.is_file():
        raise NotFound(tr(f"找不到监视配置 {shown(str(path))}；用 crmsync watch 文件夹 --init 生成一份，再填写每个副本的用户",
                          f"no watch configuration {shown(str(path))}; create one with crmsync watch FOLDER --init "
                          f"and fill in each copy's user"))
    refuse_if_others_can_write(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(tr(f"监视配置 {shown(path.name)} 格式有误：{exc}",
                              f"watch configuration {shown(path.name)} is not valid TOML: {exc}")) from None

    def bad(what_zh: str, what_en: str) -> InvalidInput:
        return InvalidInput(tr(f"监视配置 {shown(path.name)}：{what_zh}", f"watch configuration {shown(path.name)}: {what_en}"))

    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise bad(f"未知的设置 {', '.join(unknown)}", f"unknown setting {', '.join(unknown)}")
    cfg = WatchConfig(path=path)
    cfg.store = _text(data, "store", bad)
    if cfg.store and "://" not in cfg.store:
        cfg.store = str((path.parent / cfg.store).resolve())
    write_back = data.get("write_back", False)
    if not isinstance(write_back, bool):
        raise bad("write_back 应为 true 或 false", "write_back must be true or false")
    cfg.write_back = write_back
    settle = data.get("settle_seconds", DEFAULT_SETTLE)
    if isinstance(settle, bool) or not isinstance(settle, (int, float)) or not 0 <= settle <= 600:
        raise bad("settle_seconds 应为 0 到 600 之间的秒数", "settle_seconds must be a number of seconds from 0 to 600")
    cfg.settle_seconds = float(settle)
    patterns = data.get("patterns", list(DEFAULT_PATTERNS))
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise bad("patterns 应为文件名模式的列表，如 [\"*.xlsm\"]", "patterns must be a list of name patterns such as [\"*.xlsm\"]")
    cfg.patterns = tuple(patterns)
    for key, attr, suffix in (("state", "state_path", ".state.json"), ("log", "log_path", ".log")):
        given = _text(data, key, bad)
        setattr(cfg, attr, (path.parent / given) if given else path.with_name(path.stem + suffix))

    files = data.get("files", {})
    folders = data.get("folders", {})
    if not isinstance(files, dict) or not isinstance(folders, dict):
        raise bad("[files] 与 [folders] 应为表", "[files] and [folders] must be tables")
    for name, entry in files.items():
        rel = _relpath(name, bad)
        if isinstance(entry, str):
            user, copy_id = entry, None
        elif isinstance(entry, dict) and set(entry) <= {"user", "copy"} and isinstance(entry.get("user"), str):
            user, copy_id = entry["user"], entry.get("copy")
            if copy_id is not None and (not isinstance(copy_id, str) or not copy_id.strip()):
                raise bad(f"文件 {shown(name)} 的 copy 应为非空文本", f"file {shown(name)}: copy must be non-empty text")
        else:
            raise bad(f"文件 {shown(name)} 应写成 \"用户\" 或 {{ user = \"用户\", copy = \"标识\" }}",
                      f"file {shown(name)} must be \"user\" or {{ user = \"user\", copy = \"id\" }}")
        if not user.strip():
            raise bad(f"文件 {shown(name)} 没有用户", f"file {shown(name)} has no user")
        cfg.files[rel] = CopyMapping(user.strip(), copy_id.strip() if copy_id else None)
    for name, user in folders.items():
        rel = _relpath(name, bad)
        if not isinstance(user, str) or not user.strip():
            raise bad(f"文件夹 {shown(name)} 应对应一个用户名", f"folder {shown(name)} must map to a user name")
        cfg.folders[rel] = user.strip()
    copy_ids = [m.copy_id for m in cfg.files.values() if m.copy_id]
    dupes = sorted({c for c in copy_ids if copy_ids.count(c) > 1})
    if dupes:
        raise bad(f"多个文件使用同一副本标识 {', '.join(dupes)}", f"several files share the copy id {', '.join(dupes)}")
    return cfg


def check_users(cfg: WatchConfig, store) -> None:
    """Raise InvalidInput naming the entry when a mapped user does not exist in the store."""
    for user in sorted(cfg.users()):
        try:
            store.user(user)
        except NotFound:
            raise InvalidInput(tr(f"监视配置 {shown(cfg.path.name)}：用户 {shown(user)} 不存在（crmsync user add 添加）",
                                  f"watch configuration {shown(cfg.path.name)}: user {shown(user)} does not exist "
                                  f"(add it with crmsync user add)")) from None


def sample_config(folder: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> str:
    """A configuration to start from: every workbook found in ``folder``, each with a user to fill in."""
    probe = WatchConfig(path=folder / CONFIG_NAME, patterns=patterns)
    lines = []
    for rel in find_workbooks(folder, probe):
        lines.append(f'# "{rel}" = "用户名 user"')
    return SAMPLE.format(files="\n".join(lines) + ("\n" if lines else ""))


def find_workbooks(folder: Path, cfg: WatchConfig) -> list[str]:
    """Every workbook under ``folder`` the watcher would read, as sorted relative paths.

    Hidden folders (the watcher's own files, version-control folders) are skipped.
    """
    found = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                stack.append(entry)
            elif entry.is_file() and cfg.is_workbook_name(entry.name):
                found.append(entry.relative_to(folder).as_posix())
    return sorted(found)


def _text(data: dict, key: str, bad) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{key} 应为非空文本", f"{key} must be non-empty text")
    return value.strip()


def _relpath(name: str, bad) -> str:
    """A path as written in the file, checked to stay inside the watched folder ('/' separated)."""
    text = name.replace("\\", "/").strip().strip("/")
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or ".." in parts or ":" in text:
        raise bad(f"路径 {shown(name)} 应是被监视文件夹内的相对路径",
                  f"path {shown(name)} must be relative to the watched folder")
    return str(PurePosixPath(*parts)) if parts else text
