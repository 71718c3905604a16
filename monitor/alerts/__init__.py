"""Stage: alert outbox. A match becomes an alert plus one delivery row per channel, written in
the same transaction as the match, so a crash never leaves a match without its alerts.

The names below are imported on first use: ``monitor.alerts.policy`` (the config checks of the
alert policy) is imported by ``check-config`` without the outbox's database code.
"""

from typing import TYPE_CHECKING

from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.alerts.outbox import enqueue_alert, enqueue_notice
    from monitor.alerts.render import AlertMessage, Templates, render_html, render_text

__all__ = ["AlertMessage", "Templates", "enqueue_alert", "enqueue_notice", "render_html", "render_text"]
__getattr__ = lazy_exports(__name__, {"enqueue_alert": "monitor.alerts.outbox", "enqueue_notice": "monitor.alerts.outbox",
                                      **dict.fromkeys(("AlertMessage", "Templates", "render_html", "render_text"),
                                                      "monitor.alerts.render")})
