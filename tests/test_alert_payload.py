"""The outbox -> delivery hand-off is a typed payload: what the outbox stores reads back as the
same model, and alerts stored by older versions still render as they did."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from monitor.alerts.payload import (
    DigestItem,
    DigestPayload,
    MatchPayload,
    NoticePayload,
    StatementPayload,
    dump_payload,
    headline,
    parse_payload,
)
from monitor.alerts.render import AlertMessage
from monitor.deliver import build_channel
from tests.servers import Site

MATCH = MatchPayload(
    rule="kz", article_id=3, title="Talks", url="https://example.org/a", outlet="Wire", published=None,
    statements=(StatementPayload(text="Kazakhstan is ready to mediate.", highlights=((0, 10),),
                                 speaker="Tokayev", speaker_entity="tokayev", speaker_display="Tokayev",
                                 field="body"),),
    speaker="Tokayev", speaker_entity="tokayev", speaker_display="Tokayev", terms=("Kazakhstan",))


def test_what_the_outbox_stores_reads_back_the_same() -> None:
    digest = DigestPayload(channel="mail", due_at="2025-01-01T08:00:00+00:00", items=(
        DigestItem.model_validate({**MATCH.model_dump(exclude_unset=True), "story": "story:1",
                                   "also_reported_by": ["Other"]}),))
    for p in (MATCH, NoticePayload(subject="Source broken", text="HTTP 500"), digest):
        stored = dump_payload(p)
        assert parse_payload(stored) == p and dump_payload(parse_payload(stored)) == stored
    assert dump_payload(MATCH)["statements"][0]["highlights"] == [[0, 10]]
    assert [headline(p) for p in (MATCH, NoticePayload(subject="S"), digest)] == ["Talks", "S", "digest of 1 alert"]


def test_an_older_stored_alert_renders_as_before() -> None:
    # Written before speakers had entities: no speaker_entity key at all, and no kind.
    old = {"rule": "kz", "title": "Talks", "url": "https://example.org/a", "outlet": "Wire",
           "statements": [{"text": "Kazakhstan is ready.", "highlights": [[0, 10]], "speaker": "Tokayev"}]}
    ctx = AlertMessage.from_payload(1, "kz:1:hook", old).context()
    assert (ctx["kind"], ctx["title"], ctx["speaker"], ctx["speaker_entity"]) == ("alert", "Talks", "Tokayev", None)
    assert ctx["statements"][0]["marked"] == "*Kazakhstan* is ready."


def test_a_payload_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_payload({"kind": "telegram-poll", "text": "?"})


def test_a_payload_stored_by_the_first_version_still_delivers(webhook: Site) -> None:
    # The first version's shape: no kind, statements of text, highlights and speaker only; and a
    # timestamp without its offset (naive UTC), which the webhook body now always carries.
    old = {"rule": "kz", "title": "Talks", "url": "https://example.org/a", "outlet": "Wire",
           "published": "2025-09-24T07:15:00",
           "statements": [{"text": "Kazakhstan is ready to mediate.", "highlights": [[0, 10], [23, 30]],
                           "speaker": "Tokayev"}]}
    channel = build_channel("hook", "webhook", {"url": webhook.url("/hook")})
    asyncio.run(channel.send(AlertMessage.from_payload(7, "kz:1:hook", old)))
    [body] = webhook.post_json("/hook")
    [st] = body["statements"]
    assert [st["text"][a:b] for a, b in st["highlights"]] == ["Kazakhstan", "mediate"]
    assert st["speaker"] == st["speaker_name"] == "Tokayev"
    assert body["published"] == "2025-09-24T07:15:00+00:00"
    assert datetime.fromisoformat(body["published"]).utcoffset() == timedelta(0)
