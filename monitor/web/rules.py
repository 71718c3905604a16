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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import tomlkit
from sqlalchemy import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from monitor.config import Config, ConfigError, load_config
from monitor.match import Document, QuerySyntaxError, RuleMatch, RuleSet, trial_rule
from monitor.match.engine import anchors
from monitor.match.evaluate import DocIndex, explain
from monitor.store.db import session_scope
from monitor.store.models import Article, Source
from monitor.store.terms import holding
from monitor.util import aware
from monitor.web.kit import MASK

PREVIEW_SHOWN = 50
# Quoting (sentences and speakers) costs tens of ms per article: only the newest few are quoted.
PREVIEW_QUOTED = 5


@dataclass
class PreviewHit:
    article_id: int
    title: str
    url: str
    source: str
    language: str | None
    seen: datetime
    match: RuleMatch | None  # quoted for the newest PREVIEW_QUOTED only


@dataclass
class Preview:
    query: str
    days: int
    rule: str | None = None  # the configured rule being edited (its examples apply), None for a new one
    error: str | None = None
    error_column: int | None = None
    hits: list[PreviewHit] = field(default_factory=list)  # newest first, at most PREVIEW_SHOWN
    total: int = 0  # matching articles in the window
    scanned: int = 0  # candidates evaluated after the SQL narrowing
    per_day: list[tuple[date, int]] = field(default_factory=list)
    seconds: float = 0.0


def narrowing(ruleset: RuleSet, dialect: str = "sqlite") -> ColumnElement[bool] | None:
    """SQL condition on the article that every article the rule matches satisfies (None: the
    rule has no anchors, e.g. only about() or NOT clauses: nothing to narrow on).

    The anchors are the presearcher's two sets of words from two different required clauses:
    an article the rule matches holds a word of each, so both sets narrow (and their AND far
    more than either). They are looked up in each article's stored folded words
    (``monitor.store.terms``), folded by the matcher's own code: accents, case and ё/й are dealt
    with the same way on both sides, so no article the rule matches is left out."""
    anc = anchors(ruleset.rules[0].tree)
    if anc is None or not all(w for side in anc for _kind, w in side) or not (anc[0] and anc[1]):
        return None  # (an empty side or word: nothing sound to look up; evaluate the whole window)
    return col(Article.id).in_(holding(dialect, {anc[0], anc[1]}))


def document(art: Article, source: str, vector: Any = None) -> Document:
    from monitor.ingest import document_of

    return document_of(art, source, vector)


def preview(engine: Engine, config: Config | None, query: str, days: int = 30,
            now: datetime | None = None, rule: str | None = None) -> Preview:
    """The window's articles the query matches as configured rule ``rule`` (None: a new rule)."""
    started = time.perf_counter()
    out = Preview(query=query, days=days, rule=rule)
    try:
        ruleset = trial_rule(query, config, rule)
    except QuerySyntaxError as exc:
        out.error, out.error_column = exc.message, exc.column
        return out
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    counts: Counter[date] = Counter()
    cond = narrowing(ruleset, engine.dialect.name)
    with session_scope(engine) as s:
        for chunk in _window(s, cutoff, cond):
            vecs = vectors(s, [a.id for a, _ in chunk]) if ruleset.uses_about else {}
            for art, source in chunk:
                _evaluate(ruleset, art, source, vecs.get(art.id or 0), out, counts)
    first = (now - timedelta(days=days - 1)).date()
    out.per_day = [(first + timedelta(days=i), counts[first + timedelta(days=i)]) for i in range(days)]
    out.seconds = time.perf_counter() - started
    return out


CHUNK = 200


def _window(s: Any, cutoff: datetime, cond: ColumnElement[bool] | None) -> Iterator[list[tuple[Article, str]]]:
    """The window's articles (all, or those satisfying ``cond``), newest first, in chunks.

    Narrowed, the candidates' ids come first (a plain query: with a streaming cursor
    PostgreSQL favours walking the time index and testing every row's words), then their rows
    by id; unnarrowed, the window is streamed."""
    rows = select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
    if cond is None:
        q = (rows.where(col(Article.first_seen_at) >= cutoff)
             .order_by(col(Article.first_seen_at).desc(), col(Article.id).desc()))
        yield from s.exec(q.execution_options(yield_per=CHUNK)).partitions()
        return
    ids = s.exec(select(Article.id).where(col(Article.first_seen_at) >= cutoff, cond)
                 .order_by(col(Article.first_seen_at).desc(), col(Article.id).desc())).all()
    for k in range(0, len(ids), CHUNK):
        part = ids[k:k + CHUNK]
        got = {art.id: (art, name) for art, name in s.exec(rows.where(col(Article.id).in_(part))).all()}
        yield [got[i] for i in part if i in got]


def vectors(s: Any, ids: list[int | None]) -> dict[int, Any]:
    """Stored meaning vectors, for rules with about(...) clauses (none stored: those never match)."""
    from monitor.embed.store import load_vectors

    return load_vectors(s, [i for i in ids if i is not None])


def _evaluate(ruleset: RuleSet, art: Article, source: str, vector: Any, out: Preview, counts: Counter[date]) -> None:
    """One article through the rule exactly as the daemon evaluates it; the newest are quoted."""
    out.scanned += 1
    doc = document(art, source, vector)
    if not ruleset.matching(DocIndex(doc)):
        return
    out.total += 1
    seen = aware(art.first_seen_at)
    counts[seen.date()] += 1
    if len(out.hits) < PREVIEW_SHOWN:
        m = ruleset.match(doc)[0] if len(out.hits) < PREVIEW_QUOTED else None
        out.hits.append(PreviewHit(art.id or 0, art.title, art.url, source, art.language, seen, m))


@dataclass(frozen=True)
class Clause:
    ok: bool
    depth: int
    text: str


def explain_article(engine: Engine, config: Config | None, query: str, article_id: int, rule: str | None = None
                    ) -> tuple[Article | None, list[Clause], RuleMatch | None]:
    """Each clause of the query (as configured rule ``rule``) with ✓/✗ on one stored article, and the match if any."""
    ruleset = trial_rule(query, config, rule)
    with session_scope(engine) as s:
        row = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                     .where(Article.id == article_id)).first()
        vector = vectors(s, [article_id]).get(article_id) if ruleset.uses_about else None
    if row is None:
        return None, [], None
    art, source = row
    doc = document(art, source, vector)
    clauses = [parse_clause(line) for line in explain(ruleset.rules[0].tree, DocIndex(doc))]
    found = ruleset.match(doc)
    return art, clauses, found[0] if found else None


def parse_clause(line: str) -> Clause:
    stripped = line.lstrip(" ")
    depth = (len(line) - len(stripped)) // 2
    return Clause(stripped.startswith("✓"), depth, stripped[1:].strip())


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
    names = [entry.get("name") for entry in rules]
    if (not original or name != original) and name in names:
        raise SaveError([f"a rule named {name!r} already exists"])
    if original:
        if original not in names:
            raise SaveError([f"no rule named {original!r} in {path.name}"])
        target = rules[names.index(original)]
        if name != original:
            target["name"] = name
        target["query"] = _string_like(target.get("query"), query)
        if channels is not None:
            target["channels"] = channels
    else:
        target = tomlkit.table()
        target.add("name", name)
        target.add("query", _string_like(None, query))
        target.add("channels", channels or [])
        rules.append(target)
    return write_config(path, tomlkit.dumps(doc))


def write_config(path: Path, new_text: str) -> Config:
    """Replace the config file with ``new_text`` if the daemon's own loader accepts it.

    Written to a temporary file beside it, validated, then renamed over it (atomic): a reader
    never sees half a file, and a rejected edit leaves the file as it was.

    Refused when the text holds more ``•••`` than the file does: a page shows a secret as
    ``•••``, and a form saved back as it was shown would write the mask over the secret (a
    source's URL became ``http://•••:18000/...``, which the loader accepts and the fetcher
    cannot use)."""
    if new_text.count(MASK) > path.read_text(encoding="utf-8").count(MASK):
        raise SaveError([f"the text holds {MASK} where the console hides a secret value (it is never shown); "
                         f"saved, {MASK} would replace the value in {path.name}. Put the value in an "
                         "environment variable and write ${NAME} in its place, or edit "
                         f"{path.name} by hand."])
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
