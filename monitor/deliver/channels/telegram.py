"""Telegram Bot API: sendMessage with parse_mode HTML within 4,096 characters."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import ChannelType, DeliveryError, post, register, required, url_problem
from monitor.deliver.channels.common import ELLIPSIS, HttpChannel, cut, fit, meta, quote_marked

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

TELEGRAM_LIMIT = 4096


def tg_escape(s: str) -> str:
    """Telegram HTML: only <, > and & must be escaped (quotes too inside attributes)."""
    return html.escape(s, quote=True)


class TelegramChannel(HttpChannel):
    """Bot API sendMessage with parse_mode HTML; the message stays within 4,096 characters."""

    type = "telegram"

    def build(self, msg: AlertMessage) -> dict[str, Any]:
        return {"chat_id": self.opts["chat_id"], "text": self.html(msg), "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True}}

    def html(self, msg: AlertMessage) -> str:
        ctx = msg.context(self.templates.tz)
        if self.custom or msg.kind in ("notice", "test"):
            subject = tg_escape(cut(self.subject(msg), 200))
            return fit(lambda n: f"<b>{subject}</b>\n\n{tg_escape(cut(self.text(msg), n))}",
                       len(self.text(msg)), TELEGRAM_LIMIT)
        if msg.kind == "digest":
            def digest(n: int) -> str:
                out = [f"<b>{tg_escape(self.subject(msg))}</b>"]
                for g in ctx["groups"]:
                    out.append(f"\n<b>{tg_escape(g['rule'])}</b> ({g['count']})")
                    for st in g["stories"]:
                        line = f'• <a href="{tg_escape(st["url"])}">{tg_escape(cut(st["title"], 200))}</a> — {tg_escape(meta(st))}'
                        if st["statements"] and n > 0:
                            line += "\n<blockquote>" + quote_marked(st["statements"][0], n, "<b>", "</b>", tg_escape) + "</blockquote>"
                        if st["also_reported_by"]:
                            line += "\n<i>Also reported by " + tg_escape(", ".join(st["also_reported_by"])) + "</i>"
                        out.append(line)
                return "\n".join(out)
            text = fit(digest, 300, TELEGRAM_LIMIT)
            return text if len(text) <= TELEGRAM_LIMIT else cut_html_lines(text, TELEGRAM_LIMIT)

        def alert(n: int) -> str:
            parts = [f"<b>{tg_escape(cut(ctx['title'], 300))}</b>",
                     f"<i>{tg_escape(ctx['rule'])}</i> · {tg_escape(meta(ctx))}", ""]
            for s in ctx["statements"][:2]:
                parts.append("<blockquote>" + quote_marked(s, n, "<b>", "</b>", tg_escape)
                             + (f"\n— {tg_escape(s['speaker'])}" if s.get("speaker") else "") + "</blockquote>")
            if ctx["also_reported_by"]:
                parts.append("Also reported by " + tg_escape(", ".join(ctx["also_reported_by"])))
            parts.append(f'<a href="{tg_escape(ctx["url"])}">Open the article</a>')
            return "\n".join(parts)

        longest = max((len(s["text"]) for s in ctx["statements"]), default=0)
        return fit(alert, longest, TELEGRAM_LIMIT)

    async def send(self, msg: AlertMessage) -> None:
        api = str(self.opts.get("api_url", "https://api.telegram.org")).rstrip("/")
        url = f"{api}/bot{self.opts['token']}/sendMessage"
        try:
            await post(self.label(), "POST", url, self.timeout, json=self.build(msg))
        except DeliveryError as exc:
            raise DeliveryError(str(exc).replace(str(self.opts["token"]), "<token>"),
                                exc.permanent, exc.retry_after) from None


def cut_html_lines(text: str, limit: int) -> str:
    """Drop whole lines from the end until it fits (each line is balanced markup)."""
    lines = text.split("\n")
    while lines and len("\n".join(lines)) + 2 > limit:
        lines.pop()
    return "\n".join(lines) + "\n" + ELLIPSIS


class TelegramOptions(TypedDict, total=False):
    token: str  # the bot token
    chat_id: str | int
    api_url: str  # default https://api.telegram.org


def problems(opts: Mapping[str, Any]) -> list[str]:
    return required("token", "chat_id")(opts) + (url_problem(opts, "api_url") if "api_url" in opts else [])


register(ChannelType("telegram", TelegramOptions, problems, TelegramChannel))
