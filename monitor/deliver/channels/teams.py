"""Microsoft Teams through a Power Automate workflow webhook: an Adaptive Card."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import ChannelType, post, register, url_problem
from monitor.deliver.channels.common import HttpChannel, cut, meta, quote_marked

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

TEAMS_BYTES = 28_000  # Teams rejects messages over about 28 KB


def teams_escape(s: str) -> str:
    """Adaptive Card TextBlocks render a markdown subset: keep article text literal."""
    return re.sub(r"([\\*_\[\]`>#])", r"\\\1", s)


class TeamsChannel(HttpChannel):
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
                        line = f"[{teams_escape(cut(st['title'], 200))}]({st['url']}) · {teams_escape(meta(st))}"
                        if st["statements"]:
                            line += "\n\n" + quote_marked(st["statements"][0], n, "**", "**", teams_escape)
                        body.append(_tb(line))
            else:
                body = [_tb(teams_escape(ctx["title"]), weight="Bolder", size="Medium"),
                        _tb(teams_escape(f"{ctx['rule']} · {meta(ctx)}"), isSubtle=True, spacing="None")]
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


class TeamsOptions(TypedDict, total=False):
    url: str  # the workflow's webhook URL


register(ChannelType("teams", TeamsOptions, url_problem, TeamsChannel))
