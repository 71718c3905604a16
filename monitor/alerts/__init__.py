"""Stage: alert outbox. A match becomes an alert plus one delivery row per channel, written in
the same transaction as the match, so a crash never leaves a match without its alerts."""

from monitor.alerts.outbox import enqueue_alert, enqueue_notice
from monitor.alerts.render import AlertMessage, Templates, render_html, render_text

__all__ = ["AlertMessage", "Templates", "enqueue_alert", "enqueue_notice", "render_html", "render_text"]
