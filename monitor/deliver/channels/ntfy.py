"""ntfy push notifications: JSON publishing with a click action to the article."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import ChannelType, post, register, url_problem
from monitor.deliver.channels.common import HttpChannel, cut, fit

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

NTFY_BYTES = 4096  # longer messages become attachments


class NtfyChannel(HttpChannel):
    """JSON publishing (``POST /`` with the topic in the body): UTF-8 titles need no header
    encoding, and the click action opens the article."""

    type = "ntfy"

    def build(self, msg: AlertMessage) -> tuple[str, dict[str, Any]]:
        import httpx

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


class NtfyOptions(TypedDict, total=False):
    url: str  # the server, with the topic as its path unless ``topic`` is given
    topic: str
    token: str  # access token for a protected topic
    priority: int | str  # 1-5 or min/low/default/high/max
    tags: str | list[str]


def problems(opts: Mapping[str, Any]) -> list[str]:
    import httpx  # here, not at import: check-config imports every channel module

    p = url_problem(opts)
    url = opts.get("url")
    if not p and isinstance(url, str) and "topic" not in opts and not httpx.URL(url).path.strip("/"):
        p.append("'url' must end in the topic, e.g. \"https://ntfy.sh/my-alerts\"")
    pr = opts.get("priority")
    if pr is not None and pr not in (1, 2, 3, 4, 5, "min", "low", "default", "high", "max", "urgent"):
        p.append(f"'priority' must be 1-5 or min/low/default/high/max, got {pr!r}")
    return p


register(ChannelType("ntfy", NtfyOptions, problems, NtfyChannel))
