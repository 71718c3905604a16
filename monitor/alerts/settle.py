"""Settle: after stories merge, one alert per event and rule, as if they had been one story.

Reports of one event that arrive together, or out of order, can each start a story and each
alert before a later report shows they are one event and merges the stories (``monitor.story``:
a copy or a report bridging both). The gate's claims (``story_alert``) move with the merge, so
later reports stay quiet, but the two alerts are already in the outbox. An alert's deliveries
wait ``[monitor] alert_hold`` before they are due (``outbox.enqueue``: Alertmanager's
group_wait, for the same reason); a merge inside that time takes the redundant alert back here:
its deliveries that were never tried become ``merged`` (``digest_id``: the delivery that carries
the event on the same channel). Nothing is deleted: ``monitor alerts --status merged`` lists them,
the console shows them beside the article, and ``monitor alerts retry ID`` sends one anyway.

Which alert of a rule stays: every one already out (sent, being sent, tried: it cannot be taken
back), else the earliest. With ``realert = "new_statement"`` a later alert also stays when it
quotes a statement none of the staying alerts' articles carries, which is what the gate decides
for a report of one story (``monitor.story.stories.unseen``); the others are merged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from monitor.alerts.payload import MatchPayload, parse_payload
from monitor.config import Config
from monitor.store.models import Alert, Article, Delivery, Match
from monitor.story.stories import unseen

log = logging.getLogger(__name__)


@dataclass
class _Alerted:
    """One alert of the story, with its deliveries: (id, channel, status, attempts)."""

    id: int
    rule: str
    article_id: int
    statements: list[str]
    deliveries: list[tuple[int, str, str, int]] = field(default_factory=list)

    @property
    def out(self) -> bool:
        """Some delivery was tried or sent: the alert cannot be taken back."""
        return any(not _untried(status, attempts) and status != "merged" for _, _, status, attempts in self.deliveries)


def _untried(status: str, attempts: int) -> bool:
    return status == "pending" and attempts == 0


def settle(session: Session, story_id: int, realert: Mapping[str, str | None]) -> int:
    """Take back the alerts of ``story_id`` made redundant by a merge (module doc), in the
    caller's transaction; the number of deliveries merged."""
    by_rule: dict[str, list[_Alerted]] = {}
    for alert in _alerts(session, story_id):
        by_rule.setdefault(alert.rule, []).append(alert)
    taken = 0
    for rule, alerts in by_rule.items():
        if len(alerts) < 2:
            continue
        keep = [a for a in alerts if a.out]
        redundant: list[_Alerted] = []
        for a in alerts:  # in the order they were made
            if a.out:
                continue
            if not keep or realert.get(rule) == "new_statement" and _quotes_new(session, a, keep):
                keep.append(a)
            else:
                redundant.append(a)
        for a in redundant:
            taken += _merge_into(session, a, keep)
        if redundant:
            log.info("story %s: %d alert(s) of rule %s not sent: the story's alert %s carries the event",
                     story_id, len(redundant), rule, keep[0].id)
    return taken


def merge_as_one(session: Session, into: int, other: int, config: Config) -> int:
    """An analyst's merge of two stories (``monitor stories merge``, the console): one story,
    and the alerts both still hold settled as one event's; the deliveries taken back."""
    from monitor.story.stories import merge_stories

    merge_stories(session, into, other)
    return settle(session, into, {r.name: r.realert for r in config.rules})


def _alerts(session: Session, story_id: int) -> list[_Alerted]:
    a, m, ar, d = Alert.__table__, Match.__table__, Article.__table__, Delivery.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(a.c.id, a.c.rule, a.c.payload, m.c.article_id, d.c.id, d.c.channel, d.c.status, d.c.attempts)
        .select_from(a.join(m, m.c.id == a.c.match_id).join(ar, ar.c.id == m.c.article_id)
                     .join(d, d.c.alert_id == a.c.id))
        .where(ar.c.story_id == bindparam("story"), a.c.kind == "match")
        .order_by(a.c.created_at, a.c.id, d.c.channel), {"story": story_id}).all()
    found: dict[int, _Alerted] = {}
    for alert_id, rule, payload, article_id, did, channel, status, attempts in rows:
        alert = found.get(alert_id)
        if alert is None:
            alert = found[alert_id] = _Alerted(alert_id, rule, article_id, _statements(payload))
        alert.deliveries.append((did, channel, status, attempts))
    return list(found.values())


def _statements(payload: Any) -> list[str]:
    """The texts of the statements a stored alert quotes (its payload, as the outbox wrote it)."""
    found = parse_payload(payload) if isinstance(payload, dict) else None
    return [st.text for st in found.statements] if isinstance(found, MatchPayload) else []


def _quotes_new(session: Session, alert: _Alerted, keep: list[_Alerted]) -> bool:
    """Whether ``alert`` quotes a statement that the articles of the alerts in ``keep`` do not carry."""
    if not alert.statements:
        return False
    ar = Article.__table__  # type: ignore[attr-defined]
    texts = session.connection().execute(
        select(ar.c.title, ar.c.text).where(ar.c.id.in_(sorted({k.article_id for k in keep})))).all()
    return bool(unseen([f"{title}\n{text}" for title, text in texts], alert.statements))


def _merge_into(session: Session, alert: _Alerted, keep: list[_Alerted]) -> int:
    """``alert``'s untried deliveries become ``merged``, each pointing at the delivery of a kept
    alert on its channel. A delivery claimed meanwhile (another instance) is left to go out."""
    carriers: dict[str, int] = {}
    for k in keep:
        for did, channel, _, _ in k.deliveries:
            carriers.setdefault(channel, did)
    d = Delivery.__table__  # type: ignore[attr-defined]
    n = 0
    for did, channel, status, attempts in alert.deliveries:
        if not _untried(status, attempts):
            continue
        n += session.connection().execute(
            update(d).where(d.c.id == did, d.c.status == "pending", d.c.attempts == 0)
            .values(status="merged", digest_id=carriers.get(channel))).rowcount
    return n
