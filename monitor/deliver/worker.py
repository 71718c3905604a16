"""Send due deliveries from the outbox; a failure stays pending with a later attempt time."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, or_
from sqlmodel import col, select

from monitor.alerts.render import AlertMessage
from monitor.dedup.stories import also_reported_by
from monitor.deliver.base import Channel, DeliveryError
from monitor.store.db import session_scope
from monitor.store.models import Alert, Delivery, Match

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 20
BASE_DELAY = 30.0
MAX_DELAY = 3600.0


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def backoff(attempts: int, base: float = BASE_DELAY) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base, ... capped at an hour."""
    return random.uniform(base / 2, min(MAX_DELAY, base * 2 ** (attempts - 1)))


async def deliver_due(engine: Engine, channels: dict[str, Channel], now: datetime | None = None,
                      retry_delay: float = BASE_DELAY) -> DeliveryReport:
    now = now or datetime.now(UTC)
    report = DeliveryReport()
    with session_scope(engine) as s:
        rows = s.exec(
            select(Delivery, Alert, Match.article_id).join(Alert, col(Alert.id) == col(Delivery.alert_id))
            .join(Match, col(Match.id) == col(Alert.match_id))
            .where(col(Delivery.status).in_(["pending", "failed"]))
            .where(or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now))
            .order_by(col(Delivery.id))
        ).all()
        # The story's other outlets as known now, at delivery time, not when the alert was made.
        due = [(d.id, d.key, d.channel, a.id, {**a.payload, "also_reported_by": also_reported_by(s, article_id)})
               for d, a, article_id in rows]
    for delivery_id, key, channel_name, alert_id, payload in due:
        channel = channels.get(channel_name)
        error: str | None
        if channel is None:
            error = f"channel {channel_name!r} is not configured"
        else:
            try:
                await channel.send(AlertMessage.from_payload(alert_id or 0, key, payload))
                error = None
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in one channel must not stop the others
                log.exception("delivery %s: unexpected error", delivery_id)
                error = f"{type(exc).__name__}: {exc}"
        with session_scope(engine) as s:
            d = s.get(Delivery, delivery_id)
            if d is None:
                continue
            d.attempts += 1
            if error is None:
                d.status, d.sent_at, d.last_error = "sent", datetime.now(UTC), None
                report.sent += 1
                log.info("delivery %s sent to %s", delivery_id, channel_name)
            else:
                d.last_error = error
                if d.attempts >= MAX_ATTEMPTS:
                    d.status = "dead"
                else:
                    d.status = "failed"
                    d.next_attempt_at = datetime.now(UTC) + timedelta(seconds=backoff(d.attempts, retry_delay))
                report.failed += 1
                log.warning("delivery %s to %s failed (attempt %d): %s", delivery_id, channel_name, d.attempts, error)
            s.add(d)
    return report
