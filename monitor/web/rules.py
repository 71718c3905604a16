"""The rule editor's engine: preview a query on stored articles, explain it clause by clause,
and write a rule into config.toml without disturbing the rest of the file.

Evaluation is the daemon's own (``RuleSet``, ``explain``): a preview says exactly what the rule
would have matched. To stay fast on a large store, the articles are first narrowed in SQL to
those containing a word of one of the rule's two anchor sets (the presearcher's; a rule can only
match an article that has one), then every candidate is evaluated for real.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import tomlkit
from sqlalchemy import Engine, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from monitor.config import Config, ConfigError, load_config
from monitor.match import Document, QuerySyntaxError, RuleMatch, RuleSet
from monitor.match.engine import anchors
from monitor.match.evaluate import DocIndex, explain
from monitor.store.db import session_scope
from monitor.store.models import Article, Source

PREVIEW_SHOWN = 50


@dataclass
class PreviewHit:
    article_id: int
    title: str
    url: str
    source: str
    language: str | None
    seen: datetime
    match: RuleMatch


@dataclass
class Preview:
    query: str
    days: int
    error: str | None = None
    error_column: int | None = None
    hits: list[PreviewHit] = field(default_factory=list)  # newest first, at most PREVIEW_SHOWN
    total: int = 0  # matching articles in the window
    scanned: int = 0  # candidates evaluated after the SQL narrowing
    per_day: list[tuple[date, int]] = field(default_factory=list)
    seconds: float = 0.0


def compile_rule(query: str, config: Config | None) -> RuleSet:
    return RuleSet([("preview", query)], {e.name: e for e in config.entities} if config else {})


def _like_variants(word: str) -> set[str]:
    """LIKE patterns that any article holding ``word`` (folded) contains, in some case.

    SQLite's LIKE ignores case for ASCII only, so Cyrillic and other scripts get their usual
    capitalisations; е/и stand for ё/й, which folding merges."""
    esc = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if word.isascii():
        return {f"%{esc}%"}
    loose = esc.replace("е", "_").replace("и", "_")
    return {f"%{v}%" for v in (loose, loose.capitalize(), loose.upper())}


def narrowing(ruleset: RuleSet) -> ColumnElement[bool] | None:
    """SQL condition every article the rule matches satisfies (None: cannot narrow)."""
    anc = anchors(ruleset.rules[0].tree)
    if anc is None:
        return None
    conds: list[ColumnElement[bool]] = []
    for _kind, word in sorted(anc[0]):
        for pat in sorted(_like_variants(word)):
            conds.append(col(Article.title).ilike(pat, escape="\\"))
            conds.append(col(Article.text).ilike(pat, escape="\\"))
    return or_(*conds)


def document(art: Article, source: str) -> Document:
    from monitor.ingest import document_of

    return document_of(art, source)


def preview(engine: Engine, config: Config | None, query: str, days: int = 30,
            now: datetime | None = None) -> Preview:
    started = time.perf_counter()
    out = Preview(query=query, days=days)
    try:
        ruleset = compile_rule(query, config)
    except QuerySyntaxError as exc:
        out.error, out.error_column = exc.message, exc.column
        return out
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    counts: Counter[date] = Counter()
    q = (select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
         .where(col(Article.first_seen_at) >= cutoff))
    cond = narrowing(ruleset)
    if cond is not None:
        q = q.where(cond)
    q = q.order_by(col(Article.first_seen_at).desc(), col(Article.id).desc())
    with session_scope(engine) as s:
        for art, source in s.exec(q.execution_options(yield_per=200)):
            out.scanned += 1
            doc = document(art, source)
            if not ruleset.matching(DocIndex(doc)):
                continue
            out.total += 1
            seen = _aware(art.first_seen_at)
            counts[seen.date()] += 1
            if len(out.hits) < PREVIEW_SHOWN:
                m = ruleset.match(doc)[0]
                out.hits.append(PreviewHit(art.id or 0, art.title, art.url, source, art.language, seen, m))
    first = (now - timedelta(days=days - 1)).date()
    out.per_day = [(first + timedelta(days=i), counts[first + timedelta(days=i)]) for i in range(days)]
    out.seconds = time.perf_counter() - started
    return out


@dataclass(frozen=True)
class Clause:
    ok: bool
    depth: int
    text: str


def explain_article(engine: Engine, config: Config | None, query: str, article_id: int
                    ) -> tuple[Article | None, list[Clause], RuleMatch | None]:
    """Each clause of the query with ✓/✗ on one stored article, and the match if any."""
    ruleset = compile_rule(query, config)
    with session_scope(engine) as s:
        row = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                     .where(Article.id == article_id)).first()
    if row is None:
        return None, [], None
    art, source = row
    doc = document(art, source)
    clauses = [parse_clause(line) for line in explain(ruleset.rules[0].tree, DocIndex(doc))]
    found = ruleset.match(doc)
    return art, clauses, found[0] if found else None


def parse_clause(line: str) -> Clause:
    stripped = line.lstrip(" ")
    depth = (len(line) - len(stripped)) // 2
    return Clause(stripped.startswith("✓"), depth, stripped[1:].strip())


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- writing config.toml -------------------------------------------------------------------------

class SaveError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def save_rule(path: Path, name: str, query: str, channels: list[str] | None = None,
              original: str | None = None) -> Config:
    """Write rule ``name`` (new, or renamed from ``original``) into the config file.

    The file is edited with tomlkit (comments, order and formatting of everything else stay as
    they were), the result is validated by the daemon's own loader before it replaces the file,
    atomically. Returns the new config; raises SaveError with the loader's messages.
    """
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    rules: Any = doc.get("rule")
    if rules is None:
        rules = tomlkit.aot()
        doc.append("rule", rules)
    target = None
    for entry in rules:
        if entry.get("name") == (original or name):
            target = entry
    if original and target is None:
        raise SaveError([f"no rule named {original!r} in {path.name}"])
    if target is None:
        if any(entry.get("name") == name for entry in rules):
            raise SaveError([f"a rule named {name!r} already exists"])
        target = tomlkit.table()
        target.add("name", name)
        target.add("query", _string_like(None, query))
        target.add("channels", channels or [])
        rules.append(target)
    else:
        if target.get("name") != name:
            target["name"] = name
        target["query"] = _string_like(target.get("query"), query)
        if channels is not None:
            target["channels"] = channels
    return write_config(path, tomlkit.dumps(doc))


def write_config(path: Path, new_text: str) -> Config:
    """Replace the config file with ``new_text`` if the daemon's own loader accepts it.

    Written to a temporary file beside it, validated, then renamed over it (atomic): a reader
    never sees half a file, and a rejected edit leaves the file as it was."""
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_text)
        try:
            config = load_config(tmp)
        except ConfigError as exc:
            raise SaveError([p.replace(Path(tmp).name, path.name) for p in exc.problems]) from None
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return _with_path(config, path)


def _with_path(config: Config, path: Path) -> Config:
    from dataclasses import replace

    try:
        return replace(config, path=path)
    except TypeError:  # a non-dataclass config (pydantic): reload from the real path
        return load_config(path)


def _string_like(old: object, value: str) -> Any:
    """A TOML string in the old value's style: a literal '...' stays literal when it can."""
    literal = isinstance(old, tomlkit.items.String) and old.type == tomlkit.items.StringType.SLL
    if (literal or old is None) and "'" not in value and "\n" not in value:
        return tomlkit.string(value, literal=True)
    return tomlkit.string(value)
