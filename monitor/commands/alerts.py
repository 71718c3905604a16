"""Alerts: ``monitor alerts`` (deliveries and their state), ``monitor alerts retry`` and
``monitor test-channel``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from monitor.commands.common import (
    JSON_HELP,
    cut,
    database,
    echo_json_array,
    iso,
    load_config_or_exit,
    say_if_cut,
    widths,
)
from monitor.util import plural


class _Status(click.ParamType):
    """A delivery state, checked against the outbox's list only when given (keeps --help light)."""

    name = "status"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from monitor.alerts.outbox import STATUSES

        if value not in STATUSES:
            self.fail(f"{value!r} is not one of {', '.join(STATUSES)}", param, ctx)
        return str(value)


@click.group(invoke_without_command=True)
@click.option("--status", "status", type=_Status(), help="Only deliveries in this state (pending, failed, dead, ...).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def alerts(ctx: click.Context, status: str | None, as_json: bool, limit: int) -> None:
    """List deliveries (one per alert and channel), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlmodel import col, select

    from monitor.alerts.payload import MatchPayload, article_url, headline, parse_payload
    from monitor.store import Alert, Delivery, session_scope

    with database(load_config_or_exit(ctx)) as engine, session_scope(engine) as s:
        q = select(Delivery, Alert).join(Alert, col(Alert.id) == col(Delivery.alert_id))
        if status:
            q = q.where(col(Delivery.status) == status)
        rows = s.exec(q.order_by(col(Delivery.id).desc()).limit(limit)).all()
        items: list[dict[str, Any]] = []
        for d, a in rows:
            payload = parse_payload(a.payload)
            items.append({
                "id": d.id, "alert_id": a.id, "kind": a.kind, "rule": a.rule or None, "channel": d.channel,
                "status": d.status, "attempts": d.attempts, "key": d.key,
                "title": headline(payload), "url": article_url(payload),
                # what the alert quotes: highlights are [start, end] offsets into each statement's text
                "statements": [st.as_json() for st in payload.statements] if isinstance(payload, MatchPayload) else [],
                "created": iso(d.created_at), "sent": iso(d.sent_at),
                "next_attempt": iso(d.next_attempt_at) if d.status in ("pending", "failed") else None,
                "digest_due": iso(d.digest_due_at) if d.status == "digest" else None,
                # batched: the digest delivery that carries it; merged: the delivery of its
                # story's alert that carries the event (``monitor.alerts.settle``)
                "digest_id": d.digest_id if d.status != "merged" else None,
                "merged_into": d.digest_id if d.status == "merged" else None,
                "lease_owner": d.lease_owner, "last_error": d.last_error,
            })
    if as_json:
        echo_json_array(items)
        return
    if not items:
        click.echo("no deliveries" + (f" with status {status}" if status else "") + " yet", err=True)
        return
    now = datetime.now(UTC)
    ch = widths([it["channel"] for it in items], len("CHANNEL"), 24)
    ru = widths([it["rule"] or it["kind"] for it in items], len("RULE"), 24)
    click.echo(f"{'ID':>6}  {'STATUS':8} {'TRIES':>5}  {'CHANNEL':{ch}}  {'WHEN':18}  {'RULE':{ru}}  TITLE")
    for it in items:
        click.echo(f"{it['id']:>6}  {it['status']:8} {it['attempts']:>5}  {cut(it['channel'], ch):{ch}}  "
                   f"{_when(it, now):18}  {cut(it['rule'] or it['kind'], ru):{ru}}  {cut(it['title'], 60)}")
        if it["last_error"] and it["status"] != "sent":
            click.echo(f"{'':8}! {cut(it['last_error'], 110)}")
    say_if_cut(len(items), limit, "deliveries")


def _when(it: dict[str, Any], now: datetime) -> str:
    """What happens to a delivery next, or happened last, in human terms beside its status:
    ``2 min ago`` (sent), ``retry in 30 s``, ``digest in 5 h``, ``queued 1 h ago``."""
    from monitor.util import human_delta

    def at(key: str) -> datetime | None:
        return datetime.fromisoformat(it[key]) if it.get(key) else None

    if it["status"] == "sent" and it["sent"]:
        return human_delta(at("sent"), now)
    nxt = at("next_attempt")
    if it["status"] in ("pending", "failed") and nxt is not None:
        word = "retry" if it["status"] == "failed" else "due"
        return f"{word} now" if nxt <= now else f"{word} {human_delta(nxt, now)}"
    if it["status"] == "digest" and it["digest_due"]:
        return f"digest {human_delta(at('digest_due'), now)}"
    if it["status"] == "merged":
        return f"into #{it['merged_into']}" if it["merged_into"] else "story merged"
    return f"queued {human_delta(at('created'), now)}"


@alerts.command("retry")
@click.argument("delivery_id", required=False, type=int)
@click.option("--dead", is_flag=True, help="Retry every dead delivery.")
@click.pass_context
def alerts_retry(ctx: click.Context, delivery_id: int | None, dead: bool) -> None:
    """Send a failed or dead delivery again at the next delivery run (ID, or --dead for all)."""
    from monitor.alerts.outbox import retry
    from monitor.store import session_scope

    if (delivery_id is None) == (not dead):
        raise click.UsageError("give a delivery ID or --dead (not both)")
    with database(load_config_or_exit(ctx), migrate=True) as engine, session_scope(engine) as s:
        n = retry(s, delivery_id, dead=dead)
    if n == 0 and not dead:
        click.echo(f"delivery {delivery_id}: not found, or already sent or being sent", err=True)
        ctx.exit(1)
    if n == 0:
        click.echo("no dead deliveries: nothing to retry")
        return
    click.echo(f"{plural(n, 'delivery')} queued again")


@click.command("test-channel")
@click.argument("name")
@click.pass_context
def test_channel(ctx: click.Context, name: str) -> None:
    """Send a test message through channel NAME and report whether it was accepted."""
    import asyncio

    from monitor.alerts.payload import NoticePayload
    from monitor.alerts.render import AlertMessage
    from monitor.deliver import DeliveryError, build_channel

    config = load_config_or_exit(ctx)
    try:
        cc = config.channel(name)
    except KeyError:
        known = ", ".join(c.name for c in config.channels) or "none"
        click.echo(f"no channel named {name!r} (known: {known})", err=True)
        ctx.exit(2)
        return
    channel = build_channel(cc.name, cc.type, cc.options)
    now = datetime.now(UTC)
    msg = AlertMessage(0, f"test:{name}:{now.isoformat()}", NoticePayload(
        kind="test", subject=f"Test message for channel {name!r}",
        text=f"monitor can reach channel {name!r} ({cc.type}). Sent {now:%Y-%m-%d %H:%M:%S} UTC."))
    try:
        asyncio.run(channel.send(msg))
    except DeliveryError as exc:
        click.echo(f"{name} ({cc.type}): FAILED: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"{name} ({cc.type}): OK, the test message was accepted")


COMMANDS = [alerts, test_channel]
