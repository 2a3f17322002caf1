"""Follow-ups and customer status: the two writes that keep reminders and the funnel honest.

Adding a follow-up (跟进记录) stores it and moves its customer's 最近联系时间 (last contact) and
下次跟进时间 (next follow-up) along, in the same transaction.  A status change follows the funnel::

    潜在客户 potential → 意向客户 intent → 成交客户 won        (forward; a step may be skipped)
    any status → 流失客户 lost                                   (needs a 流失原因 lost reason)
    流失客户 lost → any other status                              (a lost customer comes back)

Going back inside the funnel (成交 → 意向) is refused.  Every change is an ordinary versioned,
audited update, and the audit log's time stamp of each status change is what reports.py measures
stage durations from — nothing else needs to be recorded.

    add_followup(store, "zhang", "C202405210001", {"method": "电话", "content": "确认预算",
                 "next_time": "2024-05-24 10:00"}, status="意向客户")
"""

from __future__ import annotations

from collections.abc import Mapping

from . import clock
from .errors import InvalidInput
from .i18n import tr

#: The enumeration key of the status that leaves the funnel (seed data: customer_status.lost).
LOST = "lost"


def add_followup(store, user: str, customer_id: str, values: Mapping, *, status: str | None = None,
                 lost_reason: str | None = None, reason: str | None = None, source: str = "cli") -> dict:
    """Add a follow-up for a customer and update the customer; return the stored follow-up.

    The follow-up's 跟进人 defaults to the acting user and its time to now.  When its time is not
    older than the customer's last contact, the customer's last contact becomes that time and its
    next follow-up the follow-up's 下次跟进时间 (when one is given).  ``status`` (a key, label or
    synonym) changes the customer's status in the same transaction (see change_status).

    Raises NotFound (customer), PermissionDenied (not the user's customer), InvalidInput (a bad
    value, e.g. 下次跟进时间 before the follow-up); then nothing is stored.
    """
    with store.transaction(user, source) as tx:
        customer = tx.require_record("customer", customer_id)
        if customer.get("deleted"):
            raise InvalidInput(tr(f"客户 {customer_id} 已删除", f"customer {customer_id} is deleted"))
        given = dict(values)
        given["customer_id"] = customer_id
        given.setdefault("user", tx.user.name)
        if not given.get("follow_time"):
            given["follow_time"] = clock.now()
        tx.require("edit", customer)  # a follow-up moves the customer's dates: the user must own them
        followup = tx.create("followup", given)
        touch_customer(tx, customer, followup)
        if status:
            _change_status(tx, customer_id, status, lost_reason,
                           reason or followup.get("content") or tr("跟进时更新状态", "status set with a follow-up"))
    return followup


def touch_customer(tx, customer: dict, followup: dict) -> None:
    """Move the customer's last contact and next follow-up to this follow-up's, if it is the latest."""
    when, nxt = followup.get("follow_time"), followup.get("next_time")
    last = customer.get("last_contact_at")
    if last and str(when) < str(last):
        return  # an older call logged late: the customer's dates already say more
    diff = {"last_contact_at": str(when)}
    if nxt:
        diff["next_follow_up"] = str(nxt)
    diff = {k: v for k, v in diff.items() if customer.get(k) != v}
    if diff:
        ent = tx.store.entity("customer")
        # last_contact_at is a system field (never typed), so it is written here rather than through
        # Tx.update, which refuses system fields; versioning and audit are the same.
        tx._write_changes(ent, tx.require_record("customer", customer["customer_id"]), diff, None)


def change_status(store, user: str, customer_id: str, status: str, *, lost_reason: str | None = None,
                  reason: str | None = None, source: str = "cli") -> dict:
    """Move a customer to another status along the funnel; return the customer's new version.

    :param status: key, label or synonym (``won``, ``成交客户``, ``成交``).
    :param reason: why (status is a core field: required, as for every core change).
    Raises InvalidInput (unknown status, a step back in the funnel, 流失客户 without a lost reason),
    PermissionDenied, NotFound.
    """
    with store.transaction(user, source) as tx:
        return _change_status(tx, customer_id, status, lost_reason, reason)


def _change_status(tx, customer_id: str, status: str, lost_reason: str | None, reason: str | None) -> dict:
    enums = tx.store.enums()
    new = enums.normalise("customer_status", status)
    if new is None:
        labels = "、".join(enums.labels("customer_status"))
        raise InvalidInput(tr(f"客户状态“{status}”不在列表中（{labels}）", f"status '{status}' is not in the list"))
    current = tx.require_record("customer", customer_id)
    old = current.get("status")
    if new == old:
        return current
    order = enums.keys("customer_status")
    check_transition(order, old, new, enums)
    changes: dict = {"status": new}
    if new == LOST:
        key = enums.normalise("lost_reason", lost_reason) if lost_reason else current.get("lost_reason")
        if lost_reason and key is None:
            raise InvalidInput(tr(f"流失原因“{lost_reason}”不在列表中（{'、'.join(enums.labels('lost_reason'))}）",
                                  f"lost reason '{lost_reason}' is not in the list"))
        if not key:
            raise InvalidInput(tr(f"客户 {customer_id} 改为流失客户需要填写流失原因（--lost-reason）",
                                  f"customer {customer_id}: a Lost status needs a lost reason (--lost-reason)"))
        changes["lost_reason"] = key
    return tx.update("customer", customer_id, changes, reason=reason)


def check_transition(order: list[str], old: str | None, new: str, enums=None) -> None:
    """Raise InvalidInput when old → new goes back inside the funnel (order: the list's order)."""
    if old is None or old == LOST or new == LOST or old not in order or new not in order:
        return
    if order.index(new) < order.index(old):
        label = (lambda k: enums.label("customer_status", k)) if enums else str
        raise InvalidInput(tr(f"客户状态不能从“{label(old)}”退回“{label(new)}”；如客户流失请改为流失客户",
                              f"status cannot go back from {label(old)} to {label(new)}; set Lost if the customer is lost"))
