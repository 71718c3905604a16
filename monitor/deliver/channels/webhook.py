"""JSON POST delivery with a stable Idempotency-Key so a receiver can drop repeats.

With ``secret`` set, ``X-Monitor-Signature: sha256=<hex>`` is the HMAC-SHA256 of the raw request
body under the secret (the same scheme as GitHub's X-Hub-Signature-256). ``X-Monitor-Timestamp``
is the send time (Unix seconds); it is not signed into the body, so receivers that want replay
protection should keep the Idempotency-Keys they have seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import (
    ChannelType,
    channel_timeout,
    post,
    register,
    templates_for,
    url_problem,
)

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

SIGNATURE_HEADER = "X-Monitor-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookChannel:
    type = "webhook"
    threads = False

    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.url: str = opts["url"]
        self.headers: dict[str, str] = {str(k): str(v) for k, v in dict(opts.get("headers", {})).items()}
        self.secret: str | None = opts.get("secret")
        self.timeout = channel_timeout(opts)
        self.templates = templates_for(opts)

    def build(self, msg: AlertMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(msg.as_json(self.templates), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", **self.headers,
                   "Idempotency-Key": msg.delivery_id, "X-Monitor-Timestamp": str(int(time.time()))}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        return body, headers

    async def send(self, msg: AlertMessage) -> None:
        body, headers = self.build(msg)
        await post(f"webhook {self.name}", "POST", self.url, self.timeout, content=body, headers=headers)


class WebhookOptions(TypedDict, total=False):
    url: str
    headers: dict[str, str]  # added to every request (e.g. an Authorization header from ${ENV})
    secret: str  # signs each body: X-Monitor-Signature


def problems(opts: Mapping[str, Any]) -> list[str]:
    p = url_problem(opts)
    headers = opts.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        p.append("'headers' must be a table of strings")
    if "secret" in opts and not (isinstance(opts["secret"], str) and opts["secret"]):
        p.append("'secret' must be a non-empty string")
    return p


register(ChannelType("webhook", WebhookOptions, problems, WebhookChannel))
