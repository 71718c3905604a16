"""Helpers for the delivery tests: alerts in a real store, a self-signed certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from monitor.alerts import enqueue_alert
from monitor.match.types import Hit, RuleMatch, Statement
from monitor.store import Article, Delivery, Source, create_db_engine, session_scope, upgrade
from monitor.store.models import Story

QUOTE = "Kazakhstan is ready to be a venue for negotiations, the minister said."


def store(url: str) -> Engine:
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def add_alerts(engine: Engine, n: int, channels: tuple[str, ...], rule: str = "kz",
               outlet: str = "Loopback Pravda", quote: str = QUOTE, first: int = 0,
               rules: tuple[str, ...] | None = None, story: int | None = None) -> list[int]:
    """``n`` articles, each matched by ``rule`` (or every rule in ``rules``); returns article ids.
    With ``story``, the articles belong to that story (created if needed)."""
    ids = []
    with session_scope(engine) as s:
        if story is not None and s.get(Story, story) is None:
            s.add(Story(id=story, title=f"story {story}"))
            s.flush()
        src = s.exec(select(Source).where(Source.name == outlet)).first()
        if src is None:
            src = Source(name=outlet, url=f"http://127.0.0.1/{outlet}.xml")
            s.add(src)
            s.flush()
        for i in range(first, first + n):
            art = Article(source_id=src.id or 0, guid=f"{outlet}-{i}", url=f"http://127.0.0.1/{outlet}/{i}",
                          original_url=f"http://127.0.0.1/{outlet}/{i}", title=f"Story {i} <b>&</b>",
                          text=quote, published=dt.datetime(2025, 9, 24, 7, 15, tzinfo=dt.UTC),
                          story_id=story)
            s.add(art)
            s.flush()
            start = quote.index("venue")
            st = Statement("body", 0, len(quote), quote, ((start, start + len("venue for negotiations")),),
                           "the minister")
            for r in rules or (rule,):
                enqueue_alert(s, art, src, RuleMatch(r, (Hit("body", start, start + 5, "venue"),), (st,)),
                              channels)
            ids.append(art.id or 0)
    return ids


def statuses(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        out: dict[str, int] = {}
        for d in s.exec(select(Delivery)).all():
            out[d.status] = out.get(d.status, 0) + 1
        return out


def self_signed_cert(folder: Path, addresses: Sequence[str] = ("127.0.0.1",)) -> tuple[Path, Path]:
    """A certificate for localhost and ``addresses`` and its key, made fresh for the test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
