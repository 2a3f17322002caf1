"""Reminders as an iCalendar file (RFC 5545) that Outlook, Google Calendar and Apple Calendar import.

Each reminder becomes one VEVENT: a follow-up due (or overdue: then today, so it shows up) at its
time, 30 minutes long; a remindable date (contract end, birthday) as an all-day event; a customer
with no recent contact as an all-day event today.  The UID is stable (kind + customer + date), so
importing a newer file updates events instead of duplicating them.  Times are local ("floating"),
as the store keeps them.

Written by hand, not with a library: the format is small, and the rules that matter are here —
CRLF line ends, lines folded at 75 octets without splitting a UTF-8 character, and ``\\ ; ,``
and newlines escaped in text.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

from . import clock
from .i18n import tr
from .reports import KIND_LABELS, Reminder

PRODID = "-//crmsync//Reminders//ZH"


def escape(text: str) -> str:
    """Escape a TEXT value (RFC 5545 §3.3.11)."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line: str) -> str:
    """Fold a content line into ≤ 75-octet pieces joined by CRLF + space, never inside a character."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    pieces, current, size, limit = [], [], 0, 75
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, 74  # continuation lines start with a space
        current.append(ch)
        size += n
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _event(r: Reminder, now: datetime, lang: str | None = None) -> list[str]:
    kind = KIND_LABELS[r.kind][1 if (lang or "") == "en" else 0]
    today = now.date()
    if r.kind in ("due", "overdue") and r.when:
        start = datetime.fromisoformat(r.when)
        if r.kind == "overdue":  # put it on today, keeping its hour, so it is seen
            start = datetime.combine(today, start.time())
        timing = [f"DTSTART:{_stamp(start)}", f"DTEND:{_stamp(start + timedelta(minutes=30))}"]
        day = start.date()
    else:
        day = today
        if r.kind == "date" and r.when:
            day = date.fromisoformat(r.when[:10])
            if r.detail and day < today:  # a yearly date (birthday): this year's or next year's
                day = day.replace(year=today.year)
                if day < today:
                    day = day.replace(year=today.year + 1)
        timing = [f"DTSTART;VALUE=DATE:{day.strftime('%Y%m%d')}",
                  f"DTEND;VALUE=DATE:{(day + timedelta(days=1)).strftime('%Y%m%d')}"]
    uid = hashlib.sha1(f"{r.kind}|{r.customer_id}|{r.detail}|{day}".encode()).hexdigest()[:20]
    summary = f"{kind}：{r.customer_name}" if lang != "en" else f"{kind}: {r.customer_name}"
    lines = [tr(f"客户编号：{r.customer_id}", f"Customer: {r.customer_id}"),
             tr(f"负责人：{r.owner or ''}", f"Owner: {r.owner or ''}")]
    if r.days_overdue:
        lines.append(tr(f"已逾期 {r.days_overdue} 天（原定 {r.when}）", f"{r.days_overdue} days overdue (due {r.when})"))
    if r.detail:
        lines.append(r.detail)
    if r.last_contact:
        lines.append(tr(f"最近联系：{r.last_contact}", f"Last contact: {r.last_contact}"))
    return ["BEGIN:VEVENT", f"UID:{uid}@crmsync", f"DTSTAMP:{_stamp(now)}", *timing,
            f"SUMMARY:{escape(summary)}", f"DESCRIPTION:{escape(chr(10).join(lines))}",
            f"CATEGORIES:{escape(kind)}", "END:VEVENT"]


def calendar_text(reminders: Iterable[Reminder], *, name: str | None = None, lang: str | None = None) -> str:
    """The iCalendar text of the reminders."""
    from .i18n import lang as current_lang

    lang = lang or current_lang()
    now = clock.now()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape(name or tr('客户跟进提醒', 'CRM reminders'))}"]
    for r in reminders:
        lines += _event(r, now, lang)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def write_calendar(path: str | Path, reminders: Iterable[Reminder], **kw) -> Path:
    """Write the reminders as an .ics file (atomically); return its path."""
    path = Path(path)
    data = calendar_text(reminders, **kw).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".crmsync-", suffix=".ics", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
