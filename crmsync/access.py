"""Who may see and change what: a grants table (action × role → scope) and row rules.

Declared as data, in the manner of Odoo's ir.model.access + ir.rule: a role grants an action on the
records in a scope — "own" (the user is the customer's owner), "team" (the customer's team is the
user's), or "all".  Every write path (sync, import, merge, CLI) calls check(), which answers allowed
plus a reason that refusal messages and audit entries quote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .i18n import lang, tr

ROLES = {  # key: (zh, en)
    "rep": ("销售代表", "Sales rep"),
    "manager": ("销售经理", "Sales manager"),
    "admin": ("系统管理员", "Administrator"),
}

OWN, TEAM, ALL = "own", "team", "all"

#: action → {role: scope}.  A role missing from an action's row may not do it at all.
GRANTS: dict[str, dict[str, str]] = {
    "view":            {"rep": OWN, "manager": TEAM, "admin": ALL},
    "create":          {"rep": OWN, "manager": TEAM, "admin": ALL},
    "edit":            {"rep": OWN, "manager": TEAM, "admin": ALL},
    "see_sensitive":   {"rep": OWN, "manager": TEAM, "admin": ALL},
    "assign":          {"manager": TEAM, "admin": ALL},  # change a customer's owner
    "delete":          {"manager": TEAM, "admin": ALL},
    "restore":         {"manager": TEAM, "admin": ALL},
    "approve":         {"manager": TEAM, "admin": ALL},
    "merge":           {"manager": TEAM, "admin": ALL},
    "export":          {"rep": OWN, "manager": TEAM, "admin": ALL},
    "resolve_conflict": {"manager": TEAM, "admin": ALL},
    "configure":       {"admin": ALL},  # users, teams, enumerations, custom fields
    "backup":          {"admin": ALL},
    "audit":           {"manager": ALL, "admin": ALL},
}


@dataclass(frozen=True)
class User:
    name: str
    role: str
    team: str | None = None
    display_name: str | None = None
    active: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why (in Chinese; reasons are shown to users and stored in the audit log)

    def __bool__(self) -> bool:
        return self.allowed


def check(user: User, action: str, record: Mapping | None = None) -> Decision:
    """Return whether user may do action on record (a customer row, or a row carrying its owner/team).

    :param record: for actions on a record, the customer it belongs to (owner and team are read).
    """
    if not user.active:
        return Decision(False, tr(f"用户 {user.name} 已停用", f"user {user.name} is deactivated"))
    scope = GRANTS.get(action, {}).get(user.role)
    role = ROLES.get(user.role, (user.role, user.role))[1 if lang() == "en" else 0]
    what = ACTION_LABELS.get(action, action) if lang() != "en" else action.replace("_", " ")
    if scope is None:
        return Decision(False, tr(f"{role} {user.name} 无权执行“{what}”", f"{role} {user.name} may not {what}"))
    if scope == ALL or record is None:
        return Decision(True, f"{user.role}: {scope}")
    owner, team = record.get("owner"), record.get("team")
    if scope == OWN and owner == user.name:
        return Decision(True, tr("本人负责的客户", "own customer"))
    if scope == TEAM and user.team and team == user.team:
        return Decision(True, tr("本团队的客户", "team's customer"))
    return Decision(False, tr(
        f"{role} {user.name} 无权{what}该客户（负责人 {owner or '无'}，团队 {team or '无'}）",
        f"{role} {user.name} may not {what} this customer (owner {owner or 'none'}, team {team or 'none'})"))


def visible_filter(user: User) -> dict[str, str] | None:
    """Return the column filter that limits a listing to what user may view (None: everything)."""
    scope = GRANTS["view"].get(user.role)
    if scope == ALL:
        return None
    if scope == TEAM:
        return {"team": user.team or ""}
    return {"owner": user.name}


ACTION_LABELS = {
    "view": "查看", "create": "新增", "edit": "修改", "see_sensitive": "查看敏感字段",
    "assign": "变更负责人", "delete": "删除", "restore": "恢复", "approve": "审核", "merge": "合并",
    "export": "导出", "resolve_conflict": "处理冲突", "configure": "配置系统", "backup": "备份",
    "audit": "查看审计",
}
