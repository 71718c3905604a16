"""Discord webhooks: one embed within Discord's limits; mentions in article text never ping."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import ChannelType, post, register, url_problem
from monitor.deliver.channels.common import HttpChannel, cut, fit, meta, quote_marked

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

_DISCORD_MD = re.compile(r"([\\*_~`|>\[\]#])")


def discord_escape(s: str) -> str:
    return _DISCORD_MD.sub(r"\\\1", s)


DISCORD = {"title": 256, "description": 4096, "field_name": 256, "field_value": 1024, "footer": 2048,
           "fields": 25, "total": 6000}


class DiscordChannel(HttpChannel):
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
                    value = f"[Open]({st['url']}) · {discord_escape(meta(st))}"
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
                     "footer": {"text": cut(meta(ctx), DISCORD["footer"])}}
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
        import httpx

        url = str(httpx.URL(self.opts["url"]).copy_merge_params({"wait": "true"}))
        await post(self.label(), "POST", url, self.timeout, json=self.build(msg))


def _embed_size(embed: Mapping[str, Any]) -> int:
    n = len(embed.get("title", "")) + len(embed.get("description", ""))
    n += len(embed.get("footer", {}).get("text", ""))
    return n + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


class DiscordOptions(TypedDict, total=False):
    url: str  # the webhook URL
    username: str  # shown instead of the webhook's name


register(ChannelType("discord", DiscordOptions, url_problem, DiscordChannel))
