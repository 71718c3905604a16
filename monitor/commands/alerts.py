"""Alerts: ``monitor alerts`` (deliveries and their state), ``monitor alerts retry`` and
``monitor test-channel``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import click

from monitor.commands.common import database, iso, load_config_or_exit


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
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def alerts(ctx: click.Context, status: str | None, as_json: bool, limit: int) -> None:
    """List deliveries (one per alert and channel), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlmodel import col, select

    from monitor.alerts.payload import article_url, headline, parse_payload
    from monitor.store import Alert, Delivery, session_scope

    with database(load_config_or_exit(ctx)) as engine, session_scope(engine) as s:
        q = select(Delivery, Alert).join(Alert, col(Alert.id) == col(Delivery.alert_id))
        if status:
            q = q.where(col(Delivery.status) == status)
        rows = s.exec(q.order_by(col(Delivery.id).desc()).limit(limit)).all()
        items: list[dict[str, Any]] = [{
            "id": d.id, "alert_id": a.id, "kind": a.kind, "rule": a.rule or None, "channel": d.channel,
            "status": d.status, "attempts": d.attempts, "key": d.key,
            "title": headline(parse_payload(a.payload)), "url": article_url(parse_payload(a.payload)),
            "created": iso(d.created_at), "sent": iso(d.sent_at),
            "next_attempt": iso(d.next_attempt_at) if d.status in ("pending", "failed") else None,
            "digest_due": iso(d.digest_due_at) if d.status == "digest" else None,
            "digest_id": d.digest_id, "lease_owner": d.lease_owner, "last_error": d.last_error,
        } for d, a in rows]
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=1))
        return
    if not items:
        click.echo("no deliveries" + (f" with status {status}" if status else "") + " yet", err=True)
    for it in items:
        when = it["sent"] or it["next_attempt"] or it["digest_due"] or it["created"] or ""
        extra = f"  ! {it['last_error'][:80]}" if it["last_error"] and it["status"] != "sent" else ""
        click.echo(f"{it['id']:>6}  {it['status']:8} {it['attempts']:>2}x  {it['channel'][:12]:12}  "
                   f"{when[:19]:19}  {(it['rule'] or it['kind'])[:16]:16}  {(it['title'] or '')[:60]}{extra}")


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
    click.echo(f"{n} deliver{'y' if n == 1 else 'ies'} queued again")


@click.command("test-channel")
@click.argument("name")
@click.pass_context
def test_channel(ctx: click.Context, name: str) -> None:
    """Send a test message through channel NAME and report whether it was accepted."""
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
