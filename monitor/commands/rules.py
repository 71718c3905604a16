"""Tools for rule writers: ``monitor test-rule`` and ``monitor backtest``.

Both evaluate rules exactly as the daemon does (same parser, engine and quoting) and send
nothing, so a rule can be tried on an article or on the stored history before it goes live.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from monitor.commands.common import JSON_HELP, JsonArray, cut, database, iso, load_config
from monitor.util import plural

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.match import Document, RuleMatch, RuleSet
    from monitor.match.evaluate import DocIndex
    from monitor.match.query import Node

NEAR_MISSES = 5  # backtest lists the closest non-matching articles of an about() rule


def _optional_config(ctx: click.Context, need: bool) -> Config | None:
    """The config when it exists (for entities and named rules); required only with --rule.
    --query works without a usable config (e.g. secrets not set); its entities are then
    unknown, which an @entity in the query reports."""
    return load_config(ctx, "required" if need else "lenient")


def _rule_query(config: Config | None, rule: str | None, query: str | None) -> tuple[str, str]:
    if (rule is None) == (query is None):
        raise click.UsageError("give exactly one of --rule NAME or --query QUERY")
    if query is not None:
        return "query", query
    assert config is not None
    for r in config.rules:
        if r.name == rule:
            return r.name, r.query
    known = ", ".join(r.name for r in config.rules) or "none"
    raise click.UsageError(f"no rule named {rule!r} in {config.path} (known: {known})")


def _ruleset(rule: str | None, query: str, config: Config | None) -> RuleSet:
    """--rule NAME's query (or --query's, ``rule`` None) as the daemon runs it."""
    from monitor.embed import EmbedderUnavailable
    from monitor.match import QuerySyntaxError, trial_rule

    try:
        return trial_rule(query, config, rule)
    except QuerySyntaxError as exc:
        click.echo(exc.describe(), err=True)
        sys.exit(2)
    except EmbedderUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _about_json(tree: Node, ix: DocIndex) -> list[dict[str, Any]]:
    """Each about() clause's score on this article: similarity, threshold, best sentence."""
    from monitor.match.engine import about_clauses
    from monitor.match.evaluate import about_meaning, about_score

    out = []
    for ab in about_clauses(tree):
        sc = about_score(ab, ix)
        meaning = about_meaning(ab)
        out.append({"about": ab.text, "similarity": round(sc.score, 4), "threshold": round(sc.threshold, 4),
                    "threshold_from": meaning.origin, "matched": sc.matched,
                    "sentence": None if sc.gated else sc.sentence,
                    "field": None if sc.gated else ("title", "body")[sc.field],
                    "closer_to_counterexample": sc.countered, "scored": "article" if sc.gated else "sentences"})
    return out


def _looks_like_html(data: bytes, name: str) -> bool:
    if name.lower().endswith((".html", ".htm", ".xhtml")):
        return True
    head = data[:2048].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml")) or b"<body" in head


def _document(data: bytes, name: str, url: str = "") -> Document:
    """An input as the daemon would see it: extracted article for HTML, title line + body for text."""
    from monitor.extract import detect_language, extract_article
    from monitor.match import Document
    from monitor.match.evaluate import plain_title_body

    if _looks_like_html(data, name):
        ex = extract_article(data, url or None)
        if ex is None:
            raise click.ClickException(f"{name}: no article text found in the HTML")
        return Document(title=ex.title or "", body=ex.text, url=url, site=urlsplit(url).hostname or "",
                        lang=ex.language, author=ex.authors or "")
    text = data.decode("utf-8", errors="replace")
    title, body = plain_title_body(text)
    return Document(title=title, body=body, url=url, site=urlsplit(url).hostname or "",
                    lang=detect_language(body or title))


def _read_inputs(inputs: tuple[str, ...], config: Config | None,
                 allow_private: bool = False) -> Iterator[tuple[str, Document | str]]:
    """(input, document) per input, or (input, error message)."""
    urls = [i for i in inputs if i.startswith(("http://", "https://"))]
    fetched: dict[str, bytes | str] = {}
    if urls:
        import asyncio

        fetched = asyncio.run(_fetch_all(urls, config, allow_private))
    for item in inputs:
        try:
            if item in fetched:
                got = fetched[item]
                if isinstance(got, str):
                    yield item, got
                    continue
                yield item, _document(got, item, item)
            else:
                yield item, _document(Path(item).read_bytes(), item)
        except OSError as exc:
            yield item, f"cannot read: {exc.strerror or exc}"
        except click.ClickException as exc:
            yield item, exc.message


async def _fetch_all(urls: list[str], config: Config | None, allow_private: bool = False) -> dict[str, bytes | str]:
    from monitor.config import FetchSettings
    from monitor.fetch import Fetcher, FetchError
    from monitor.util import HTML_ACCEPT

    settings = config.fetch if config else FetchSettings()
    out: dict[str, bytes | str] = {}
    async with Fetcher(settings, config.monitor.contact if config else "") as f:
        for u in urls:
            try:
                out[u] = (await f.get(u, accept=HTML_ACCEPT, allow_private=allow_private or None)).content
            except FetchError as exc:
                out[u] = str(exc)
    return out


def _statement_json(m: RuleMatch | None) -> dict[str, Any]:
    """What a match quotes, in the one JSON form of every command and the webhook: statements
    with ``highlights`` as [start, end] offsets into their ``text``; ``hits`` with offsets into
    the article's title or body (``field``)."""
    from monitor.alerts.payload import StatementPayload

    if m is None:
        return {"statements": [], "speaker": None, "hits": []}
    return {
        "statements": [StatementPayload.of(s).as_json() for s in m.statements],
        "speaker": m.speaker,
        "hits": [{"field": h.field, "start": h.start, "end": h.end, "text": h.text} for h in m.hits],
    }


@click.command("test-rule")
@click.option("--rule", "rule", metavar="NAME", help="A rule from the config.")
@click.option("--query", "query", metavar="QUERY", help="A query to try (entities come from the config).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " One object per input.")
@click.option("--allow-private-networks", "allow_private", is_flag=True, help="Allow a loopback or private address.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.pass_context
def test_rule(ctx: click.Context, rule: str | None, query: str | None, as_json: bool, allow_private: bool,
              inputs: tuple[str, ...]) -> None:
    """Whether a rule matches each INPUT (a URL, an HTML file or a text file), and why.

    Exit status: 0 if every input matched, 1 if some did not, 2 on errors.
    """
    from monitor.match.evaluate import DocIndex, explain

    config = _optional_config(ctx, need=rule is not None)
    name, q = _rule_query(config, rule, query)
    rules = _ruleset(rule, q, config)
    compiled = rules.rules[0]
    all_matched, errors = True, False
    with JsonArray() if as_json else nullcontext() as out:
        for item, doc in _read_inputs(inputs, config, allow_private):
            rec: dict[str, Any] = {"input": item, "matched": False, "rule": name, "query": q, "title": None,
                                   **_statement_json(None), "clauses": [], "about": [], "error": None}
            if isinstance(doc, str):
                errors = True
                if out:
                    out.add({**rec, "error": doc})
                else:
                    click.echo(f"{item}: ERROR {doc}", err=True)
                continue
            matches = rules.match(doc)
            m = matches[0] if matches else None
            all_matched &= m is not None
            ix = DocIndex(doc)
            ix.about_exhaustive = True  # a non-match shows its best sentence, not only the article score
            why = list(explain(compiled.tree, ix))
            if out:
                out.add({**rec, "matched": m is not None, "title": doc.title, **_statement_json(m),
                         "clauses": why, "about": _about_json(compiled.tree, ix)})
                continue
            _print_test(item, name, q, why, m)
    ctx.exit(2 if errors else (0 if all_matched else 1))


def _print_test(item: str, name: str, q: str, why: list[str], m: RuleMatch | None) -> None:
    click.echo(f"{item}: {'MATCH' if m else 'no match'} ({name}: {q})")
    for line in why:
        click.echo(f"    {line}")
    for s in m.statements if m else ():
        click.echo(f"  > {_mark(s.text, s.highlights)}")
        if s.speaker:
            click.echo(f"    — {s.speaker}")


def _mark(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    out, pos = [], 0
    for a, b in spans:
        if a < pos:
            continue
        out.append(text[pos:a] + "[" + text[a:b] + "]")
        pos = b
    return "".join(out) + text[pos:]


@click.command()
@click.option("--rule", "rule", metavar="NAME", help="A rule from the config (new or changed).")
@click.option("--query", "query", metavar="QUERY", help="Or a query to try.")
@click.option("--since", default="30d", show_default=True, help="How far back: 90m, 12h, 30d.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " One object per would-be alert.")
@click.pass_context
def backtest(ctx: click.Context, rule: str | None, query: str | None, since: str, as_json: bool) -> None:
    """Replay stored articles against a rule and show what would have alerted; sends nothing."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from monitor.match import Document
    from monitor.match.engine import about_clauses, quote
    from monitor.match.evaluate import DocIndex, about_line, about_score
    from monitor.store import Article, Source, session_scope
    from monitor.util import parse_duration

    config = _optional_config(ctx, need=True)
    assert config is not None
    name, q = _rule_query(config, rule, query)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    rules = _ruleset(rule, q, config)
    cutoff = datetime.now(UTC) - timedelta(seconds=window)
    found = 0
    abouts = about_clauses(rules.rules[0].tree)
    near: list[tuple[float, dict[str, Any], str]] = []  # closest non-matches, for tuning about()
    with database(config) as engine, session_scope(engine) as s, (JsonArray() if as_json else nullcontext()) as out:
        total = s.exec(select(func.count()).select_from(Article)
                       .where(col(Article.first_seen_at) >= cutoff)).one()
        alerted, stories_alerted = _alerted(s, name)
        rows = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                      .where(col(Article.first_seen_at) >= cutoff)
                      .order_by(col(Article.first_seen_at), col(Article.id))
                      .execution_options(yield_per=200))
        with click.progressbar(rows, length=total, label=f"backtest {name}", file=sys.stderr) as bar:
            for art, source_name in bar:
                vector = None
                if abouts:
                    from monitor.embed.store import load_vectors

                    vector = load_vectors(s, [art.id or 0]).get(art.id or 0)
                doc = Document(title=art.title, body=art.text, url=art.url,
                               site=urlsplit(art.url).hostname or "", source=source_name,
                               lang=art.language, author=art.authors or "", vector=vector)
                ix = DocIndex(doc)
                m = quote(rules.rules[0], ix, rules.entities) if rules.rules[0].test(ix) else None
                about = _about_json(rules.rules[0].tree, ix) if abouts and (m or ix.about_scores) else []
                # every item has the same keys; a near miss (closest non-match) has no statements
                item = {"article_id": art.id, "url": art.url, "title": art.title, "source": source_name,
                        "published": iso(art.published), "already_alerted": art.id in alerted,
                        "story_alerted": art.id not in alerted and art.story_id in stories_alerted,
                        "near_miss": m is None, **_statement_json(m), "about": about}
                if m is None:
                    scored = [a for a in about if a["scored"] == "sentences"]
                    if scored:
                        near.append((max(a["similarity"] - a["threshold"] for a in scored),
                                     {**item, "about": scored}, source_name))
                        near.sort(key=lambda x: -x[0])
                        del near[NEAR_MISSES:]
                    continue
                found += 1
                if out:
                    out.add(item)
                    continue
                seen = (" (already alerted)" if item["already_alerted"] else
                        " (story already alerted)" if item["story_alerted"] else "")
                click.echo(f"{art.id:>6}  {cut(source_name, 20):20}  {cut(art.title, 70)}{seen}")
                for ab in abouts:
                    click.echo(f"        about: {about_line(about_score(ab, ix))}")
                if m.statements:
                    st = m.statements[0]
                    who = f" — {st.speaker}" if st.speaker else ""
                    click.echo(f"        > {cut(_mark(st.text, st.highlights), 300)}{who}")
        for _, item, source_name in near:
            if out:
                out.add(item)
                continue
            click.echo(f"closest non-match {item['article_id']:>6}  {cut(source_name, 20):20}  {cut(item['title'], 60)}")
            for a in item["about"]:
                cmp = "≥" if a["similarity"] >= a["threshold"] else "<"
                sentence = cut(a["sentence"], 200)
                click.echo(f"        about: similarity {a['similarity']:.3f} {cmp} threshold {a['threshold']:.3f}: "
                           f"{a['field']} \"{sentence}\"")
    click.echo(f"{found} of {plural(total, 'article')} first seen since {cutoff:%Y-%m-%d %H:%M} UTC would have "
               f"alerted for {name}; nothing was sent.", err=True)


def _alerted(s: Any, rule: str) -> tuple[set[int], set[int]]:
    """The articles whose match for ``rule`` alerted, and the stories they are in now.

    A backtest marks what the analyst has been told already. Being matched is not it: a copy of
    a story that had alerted is matched and recorded without an alert (``monitor.alerts.gate``),
    and an alert a story merge took back (every delivery ``merged``, ``monitor.alerts.settle``)
    never went out; both are news of a story that alerted through another article."""
    from sqlmodel import col, select

    from monitor.store import Article
    from monitor.store.models import Alert, Delivery, Match

    rows = s.exec(select(Match.article_id, Article.story_id, Delivery.status)
                  .join(Alert, col(Alert.match_id) == col(Match.id))
                  .join(Article, col(Article.id) == col(Match.article_id))
                  .outerjoin(Delivery, col(Delivery.alert_id) == col(Alert.id))
                  .where(Match.rule == rule)).all()
    articles: set[int] = set()
    stories: set[int] = set()
    for article_id, story_id, status in rows:
        if status != "merged":  # None: an alert without deliveries (no channel) alerted all the same
            articles.add(article_id)
            if story_id is not None:
                stories.add(story_id)
    return articles, stories


COMMANDS = [test_rule, backtest]
