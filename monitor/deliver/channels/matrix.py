"""Matrix Client-Server API: one m.room.message with HTML, sent idempotently."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

from monitor.deliver.base import ChannelType, post, register, required, url_problem
from monitor.deliver.channels.common import HttpChannel, cut

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

MATRIX_BYTES = 60_000  # events are limited to 65,536 bytes including the envelope


def _matrix_html(s: str) -> str:
    """The template's HTML within Matrix's allowed tags: <mark> becomes <strong>, no styles."""
    s = re.sub(r"</?(html|body)[^>]*>", "", s)
    s = re.sub(r"\sstyle=\"[^\"]*\"", "", s)
    return s.replace("<mark>", "<strong>").replace("</mark>", "</strong>").strip()


class MatrixChannel(HttpChannel):
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


class MatrixOptions(TypedDict, total=False):
    homeserver: str  # https://matrix.example.org
    access_token: str
    room_id: str  # "!abc:example.org" or an alias "#room:example.org"


def problems(opts: Mapping[str, Any]) -> list[str]:
    p = url_problem(opts, "homeserver") + required("access_token", "room_id")(opts)
    room = opts.get("room_id")
    if isinstance(room, str) and not room.startswith(("!", "#")):
        p.append(f"'room_id' must look like \"!abc:example.org\", got {room!r}")
    return p


register(ChannelType("matrix", MatrixOptions, problems, MatrixChannel))
