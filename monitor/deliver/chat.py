"""Chat and push channels: Slack, Telegram, Discord, Teams (Power Automate), Matrix, ntfy.

Each message is built in the platform's own format and within its documented limits; a long
statement is cut at a word boundary with an ellipsis *before* escaping, so a cut never splits
an entity (``&amp;``) or a tag, and markup from the article is always escaped.

With a ``text`` (or ``subject``) template override the channel sends the rendered template as
plain text (escaped for the platform) instead of its native layout.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from monitor.alerts.render import AlertMessage, marked
from monitor.deliver.base import DeliveryError, channel_timeout, post, templates_for

ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-–—") + ELLIPSIS


def fit(render: Callable[[int], str], size: int, limit: int, measure: Callable[[str], int] = len) -> str:
    """The longest ``render(n)`` (n plain characters of the variable part) within ``limit``
    (binary search: escaping makes the rendered length grow unevenly with n)."""
    out = render(size)
    if measure(out) <= limit:
        return out
    lo, hi = 0, size  # render(lo) is assumed to fit, render(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(render(mid)) <= limit:
            lo = mid
        else:
            hi = mid
    return render(lo)


def quote_marked(s: Mapping[str, Any], n: int, open_: str, close: str, escape: Callable[[str], str]) -> str:
    """A statement cut to ``n`` characters, escaped, with its highlights (clipped to the cut)."""
    text = s["text"]
    short = cut(text, n)
    keep = len(short) - (1 if short.endswith(ELLIPSIS) and not text.endswith(ELLIPSIS) else 0)
    spans = [(a, min(b, keep)) for a, b in s.get("highlights", []) if a < keep]
    return marked(short, spans, open_, close, escape=escape)


def _meta(ctx: Mapping[str, Any]) -> str:
    parts = [ctx.get("outlet") or "", ctx.get("published") or ""]
    return " · ".join(p for p in parts if p)


class _HttpChannel:
    type = ""
    threads = False

    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.opts = dict(opts)
        self.timeout = channel_timeout(opts)
        self.templates = templates_for(opts)
        self.custom = any(k in opts for k in ("subject", "text"))

    def label(self) -> str:
        return f"{self.type} {self.name}"

    def subject(self, msg: AlertMessage) -> str:
        return self.templates.render(msg, "subject")

    def text(self, msg: AlertMessage) -> str:
        return self.templates.render(msg, "text").strip()


# -- Slack -----------------------------------------------------------------------------------
def slack_escape(s: str) -> str:
    """Slack mrkdwn needs only &, < and > escaped (docs: "Escaping text")."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_url(u: str) -> str:
    """A URL inside <url|text>: the delimiters must not appear in it."""
    return u.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


SLACK_SECTION = 3000  # characters in a section block's text
SLACK_HEADER = 150  # plain_text header
SLACK_BLOCKS = 50


class SlackChannel(_HttpChannel):
    """Incoming webhook: ``{"text": fallback, "blocks": [...]}`` with mrkdwn sections."""

    type = "slack"

    def build(self, msg: AlertMessage) -> dict[str, Any]:
        ctx = msg.context(self.templates.tz)
        subject = self.subject(msg)
        if self.custom or msg.kind in ("notice", "test"):
            body = slack_escape(cut(self.text(msg), SLACK_SECTION))
            return {"text": slack_escape(cut(subject, 3000)),
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}
        if msg.kind == "digest":
            blocks: list[dict[str, Any]] = [
                {"type": "header", "text": {"type": "plain_text", "text": cut(subject, SLACK_HEADER)}}]
            for g in ctx["groups"]:
                for st in g["stories"]:
                    if len(blocks) >= SLACK_BLOCKS - 1:
                        break
                    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": self._story(g["rule"], st)}})
            return {"text": slack_escape(subject), "blocks": blocks}
        quotes = "\n".join(self._quote(s, 1200) for s in ctx["statements"][:2])
        body = fit(lambda n: "\n".join(self._quote(s, n) for s in ctx["statements"][:2]),
                   1200, SLACK_SECTION) if len(quotes) > SLACK_SECTION else quotes
        ctx_line = f"Rule *{slack_escape(ctx['rule'])}* · {slack_escape(_meta(ctx))}"
        if ctx["also_reported_by"]:
            ctx_line += " · also reported by " + slack_escape(", ".join(ctx["also_reported_by"]))
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": cut(ctx["title"], SLACK_HEADER)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body or "(no statement)"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(ctx_line, SLACK_SECTION)}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{slack_url(ctx['url'])}|Open the article>"}},
        ]
        return {"text": slack_escape(cut(subject, 3000)), "blocks": blocks, "unfurl_links": False}

    @staticmethod
    def _quote(s: Mapping[str, Any], n: int) -> str:
        q = quote_marked(s, n, "*", "*", slack_escape)
        return f"> {q}" + (f"\n> — _{slack_escape(s['speaker'])}_" if s.get("speaker") else "")

    def _story(self, rule: str, st: Mapping[str, Any]) -> str:
        title = slack_escape(st["title"]).replace("|", "¦")
        lines = [f"*<{slack_url(st['url'])}|{cut(title, 200)}>* ({slack_escape(rule)})", slack_escape(_meta(st))]
        lines += [self._quote(s, 500) for s in st["statements"][:1]]
        if st["also_reported_by"]:
            lines.append("Also reported by " + slack_escape(", ".join(st["also_reported_by"])))
        return cut("\n".join(lines), SLACK_SECTION)

    async def send(self, msg: AlertMessage) -> None:
        await post(self.label(), "POST", self.opts["url"], self.timeout, json=self.build(msg))


# -- Telegram --------------------------------------------------------------------------------
TELEGRAM_LIMIT = 4096


def tg_escape(s: str) -> str:
    """Telegram HTML: only <, > and & must be escaped (quotes too inside attributes)."""
    return html.escape(s, quote=True)


class TelegramChannel(_HttpChannel):
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
                        line = f'• <a href="{tg_escape(st["url"])}">{tg_escape(cut(st["title"], 200))}</a> — {tg_escape(_meta(st))}'
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
                     f"<i>{tg_escape(ctx['rule'])}</i> · {tg_escape(_meta(ctx))}", ""]
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


# -- Discord ---------------------------------------------------------------------------------
_DISCORD_MD = re.compile(r"([\\*_~`|>\[\]#])")


def discord_escape(s: str) -> str:
    return _DISCORD_MD.sub(r"\\\1", s)


DISCORD = {"title": 256, "description": 4096, "field_name": 256, "field_value": 1024, "footer": 2048,
           "fields": 25, "total": 6000}


class DiscordChannel(_HttpChannel):
    """Webhook with one embed within Discord's limits; mentions in article text never ping."""

    type = "discord"

    def build(self, msg: AlertMessage) -> dict[str, Any]:
        ctx = msg.context(self.templates.tz)
        embed: dict[str, Any]
        if self.custom or msg.kind in ("notice", "test"):
            embed = {"title": cut(self.subject(msg), DISCORD["title"]),
                     "description": cut(discord_escape(self.text(msg)), DISCORD["description"])}
        elif msg.kind == "digest":
            fields: list[dict[str, Any]] = []
            for g in ctx["groups"]:
                for st in g["stories"]:
                    if len(fields) >= DISCORD["fields"]:
                        break
                    value = f"[Open]({st['url']}) · {discord_escape(_meta(st))}"
                    if st["statements"]:
                        value = "> " + quote_marked(st["statements"][0], 600, "**", "**", discord_escape) + "\n" + value
                    fields.append({"name": cut(f"{g['rule']}: {st['title']}", DISCORD["field_name"]),
                                   "value": cut(value, DISCORD["field_value"])})
            embed = {"title": cut(self.subject(msg), DISCORD["title"]), "fields": fields}
            while _embed_size(embed) > DISCORD["total"] and embed["fields"]:
                embed["fields"].pop()
        else:
            def desc(n: int) -> str:
                out = []
                for s in ctx["statements"][:2]:
                    out.append("> " + quote_marked(s, n, "**", "**", discord_escape)
                               + (f"\n> — *{discord_escape(s['speaker'])}*" if s.get("speaker") else ""))
                return "\n\n".join(out)
            longest = max((len(s["text"]) for s in ctx["statements"]), default=0)
            embed = {"title": cut(ctx["title"], DISCORD["title"]), "url": ctx["url"],
                     "description": fit(desc, longest, DISCORD["description"]),
                     "fields": [{"name": "Rule", "value": cut(ctx["rule"], 1024), "inline": True},
                                {"name": "Outlet", "value": cut(ctx["outlet"] or "-", 1024), "inline": True}],
                     "footer": {"text": cut(_meta(ctx), DISCORD["footer"])}}
            if ctx.get("published_iso"):
                embed["timestamp"] = ctx["published_iso"]
            if ctx["also_reported_by"]:
                embed["fields"].append({"name": "Also reported by",
                                        "value": cut(", ".join(ctx["also_reported_by"]), 1024)})
        body: dict[str, Any] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
        if "username" in self.opts:
            body["username"] = self.opts["username"]
        return body

    async def send(self, msg: AlertMessage) -> None:
        url = str(httpx.URL(self.opts["url"]).copy_merge_params({"wait": "true"}))
        await post(self.label(), "POST", url, self.timeout, json=self.build(msg))


def _embed_size(embed: Mapping[str, Any]) -> int:
    n = len(embed.get("title", "")) + len(embed.get("description", ""))
    n += len(embed.get("footer", {}).get("text", ""))
    return n + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


# -- Microsoft Teams (Power Automate workflow webhook) ---------------------------------------
TEAMS_BYTES = 28_000  # Teams rejects messages over about 28 KB


def teams_escape(s: str) -> str:
    """Adaptive Card TextBlocks render a markdown subset: keep article text literal."""
    return re.sub(r"([\\*_\[\]`>#])", r"\\\1", s)


class TeamsChannel(_HttpChannel):
    """A Power Automate "when a Teams webhook request is received" flow: an Adaptive Card."""

    type = "teams"

    def build(self, msg: AlertMessage) -> dict[str, Any]:
        ctx = msg.context(self.templates.tz)
        actions: list[dict[str, Any]] = []

        def card(n: int) -> dict[str, Any]:
            body: list[dict[str, Any]]
            if self.custom or msg.kind in ("notice", "test"):
                body = [_tb(self.subject(msg), weight="Bolder", size="Medium"),
                        _tb(teams_escape(cut(self.text(msg), n)))]
            elif msg.kind == "digest":
                body = [_tb(self.subject(msg), weight="Bolder", size="Medium")]
                for g in ctx["groups"]:
                    body.append(_tb(teams_escape(f"{g['rule']} ({g['count']})"), weight="Bolder"))
                    for st in g["stories"]:
                        line = f"[{teams_escape(cut(st['title'], 200))}]({st['url']}) · {teams_escape(_meta(st))}"
                        if st["statements"]:
                            line += "\n\n" + quote_marked(st["statements"][0], n, "**", "**", teams_escape)
                        body.append(_tb(line))
            else:
                body = [_tb(teams_escape(ctx["title"]), weight="Bolder", size="Medium"),
                        _tb(teams_escape(f"{ctx['rule']} · {_meta(ctx)}"), isSubtle=True, spacing="None")]
                for s in ctx["statements"][:2]:
                    body.append({"type": "Container", "style": "emphasis", "items": [
                        _tb(quote_marked(s, n, "**", "**", teams_escape))]
                        + ([_tb("— " + teams_escape(s["speaker"]), isSubtle=True)] if s.get("speaker") else [])})
                if ctx["also_reported_by"]:
                    body.append(_tb("Also reported by " + teams_escape(", ".join(ctx["also_reported_by"])),
                                    isSubtle=True))
                actions[:] = [{"type": "Action.OpenUrl", "title": "Open the article", "url": ctx["url"]}]
            return {"type": "message", "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body, "actions": actions,
                            "msteams": {"width": "Full"}}}]}

        size = 2000
        out = card(size)
        while len(json.dumps(out).encode()) > TEAMS_BYTES and size > 50:
            size //= 2
            out = card(size)
        return out

    async def send(self, msg: AlertMessage) -> None:
        await post(self.label(), "POST", self.opts["url"], self.timeout, json=self.build(msg))


def _tb(text: str, **kw: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **kw}


# -- Matrix ----------------------------------------------------------------------------------
MATRIX_BYTES = 60_000  # events are limited to 65,536 bytes including the envelope


def _matrix_html(s: str) -> str:
    """The template's HTML within Matrix's allowed tags: <mark> becomes <strong>, no styles."""
    s = re.sub(r"</?(html|body)[^>]*>", "", s)
    s = re.sub(r"\sstyle=\"[^\"]*\"", "", s)
    return s.replace("<mark>", "<strong>").replace("</mark>", "</strong>").strip()


class MatrixChannel(_HttpChannel):
    """Client-Server API ``PUT /rooms/{room}/send/m.room.message/{txnId}``: the transaction id
    is the delivery's stable id, so a repeat after a crash is dropped by the homeserver."""

    type = "matrix"

    def build(self, msg: AlertMessage) -> tuple[str, dict[str, Any]]:
        hs = str(self.opts["homeserver"]).rstrip("/")
        url = (f"{hs}/_matrix/client/v3/rooms/{quote(str(self.opts['room_id']), safe='')}"
               f"/send/m.room.message/{msg.delivery_id}")
        text = self.templates.render(msg, "text").strip()
        formatted = _matrix_html(self.templates.render(msg, "html"))
        if len(text.encode()) + len(formatted.encode()) > MATRIX_BYTES:
            text = cut(text, MATRIX_BYTES // 8)
            formatted = html.escape(text).replace("\n", "<br>")
        return url, {"msgtype": "m.text", "body": text, "format": "org.matrix.custom.html",
                     "formatted_body": formatted}

    async def send(self, msg: AlertMessage) -> None:
        url, body = self.build(msg)
        await post(self.label(), "PUT", url, self.timeout, json=body,
                   headers={"Authorization": f"Bearer {self.opts['access_token']}"})


# -- ntfy ------------------------------------------------------------------------------------
NTFY_BYTES = 4096  # longer messages become attachments


class NtfyChannel(_HttpChannel):
    """JSON publishing (``POST /`` with the topic in the body): UTF-8 titles need no header
    encoding, and the click action opens the article."""

    type = "ntfy"

    def build(self, msg: AlertMessage) -> tuple[str, dict[str, Any]]:
        u = httpx.URL(self.opts["url"])
        topic = self.opts.get("topic")
        path = u.path.rstrip("/")
        if topic is None:
            path, _, topic = path.rpartition("/")
        base = str(u.copy_with(path=path + "/", query=None))
        text = self.text(msg)
        message = fit(lambda n: cut(text, n), len(text), NTFY_BYTES - 96, lambda s: len(s.encode()))
        body: dict[str, Any] = {"topic": topic, "title": cut(self.subject(msg), 250), "message": message}
        if msg.url and msg.kind == "alert":
            body["click"] = msg.url
        if "priority" in self.opts:
            p = self.opts["priority"]
            body["priority"] = p if isinstance(p, int) else {"min": 1, "low": 2, "default": 3, "high": 4,
                                                              "max": 5, "urgent": 5}[p]
        tags = self.opts.get("tags")
        if tags:
            body["tags"] = [tags] if isinstance(tags, str) else list(tags)
        return base, body

    async def send(self, msg: AlertMessage) -> None:
        url, body = self.build(msg)
        headers = {"Authorization": f"Bearer {self.opts['token']}"} if self.opts.get("token") else {}
        await post(self.label(), "POST", url, self.timeout, json=body, headers=headers)
