"""JSON POST delivery with a stable Idempotency-Key so a receiver can drop repeats."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import httpx

from monitor.alerts.render import AlertMessage
from monitor.deliver.base import DeliveryError
from monitor.fetch.client import user_agent


class WebhookChannel:
    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.url: str = opts["url"]
        self.headers: dict[str, str] = {str(k): str(v) for k, v in dict(opts.get("headers", {})).items()}
        self.secret: str | None = opts.get("secret")
        self.timeout = float(opts.get("timeout", 30))

    def build(self, msg: AlertMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(msg.as_json(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": user_agent(),
                   "Idempotency-Key": msg.delivery_key, **self.headers}
        if self.secret:
            sig = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Monitor-Signature"] = f"sha256={sig}"
        return body, headers

    async def send(self, msg: AlertMessage) -> None:
        body, headers = self.build(msg)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.name}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 300:
            raise DeliveryError(f"webhook {self.name}: HTTP {resp.status_code}")
