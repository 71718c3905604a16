"""Slack incoming webhooks: mrkdwn sections within Slack's block limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import ChannelType, post, register, url_problem
from monitor.deliver.channels.common import HttpChannel, cut, fit, meta, quote_marked

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage


def slack_escape(s: str) -> str:
    """Slack mrkdwn needs only &, < and > escaped (docs: "Escaping text")."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_url(u: str) -> str:
    """A URL inside <url|text>: the delimiters must not appear in it."""
    return u.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


SLACK_SECTION = 3000  # characters in a section block's text
SLACK_HEADER = 150  # plain_text header
SLACK_BLOCKS = 50


class SlackChannel(HttpChannel):
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
        ctx_line = f"Rule *{slack_escape(ctx['rule'])}* · {slack_escape(meta(ctx))}"
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
        lines = [f"*<{slack_url(st['url'])}|{cut(title, 200)}>* ({slack_escape(rule)})", slack_escape(meta(st))]
        lines += [self._quote(s, 500) for s in st["statements"][:1]]
        if st["also_reported_by"]:
            lines.append("Also reported by " + slack_escape(", ".join(st["also_reported_by"])))
        return cut("\n".join(lines), SLACK_SECTION)

    async def send(self, msg: AlertMessage) -> None:
        await post(self.label(), "POST", self.opts["url"], self.timeout, json=self.build(msg))


class SlackOptions(TypedDict, total=False):
    url: str  # the incoming-webhook URL (holds its token: keep it in ${ENV})


register(ChannelType("slack", SlackOptions, url_problem, SlackChannel))
