"""Syndicated variants of real article pages, and the negatives that must not be merged with them.

A wire story reprinted by other outlets is rarely a byte copy: it is trimmed, re-headlined,
lightly edited (numbers, quotes, the lead), re-punctuated, wrapped in the outlet's boilerplate and
byline, with paragraphs dropped or merged, at a different URL. The negatives are what fools a
naive detector: other articles on the same topic (same names, different text) and other articles
from the same outlet sharing its boilerplate.

Used by ``bench/dedup_quality.py`` (all sixty pages) and the dedup tests (a few pages), which serve
the result from loopback outlets through the real pipeline.
"""

from __future__ import annotations

import html
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def articles_dir() -> Path | None:
    """../shared/data/articles next to the repo (or next to the main checkout of a worktree)."""
    for base in (_REPO.parent, _REPO.parent.parent):
        d = base / "shared" / "data" / "articles"
        if (d / "ground-truth.json").is_file():
            return d
    return None

_WORD = re.compile(r"\w+|[^\w\s]+|\s+")
_FILLER = ("reportedly", "also", "now", "officially", "further", "still", "widely", "again", "later",
           "recently", "earlier", "largely", "clearly", "mainly", "previously")
_SWAPS = {"said": "stated", "says": "states", "told": "informed", "big": "large", "about": "around",
          "however": "but", "because": "as", "people": "residents", "company": "firm", "new": "fresh",
          "after": "following", "before": "prior to", "show": "reveal", "shows": "reveals",
          "percent": "per cent", "president": "leader", "government": "administration"}


@dataclass
class Outlet:
    """A syndicating outlet: its name and the boilerplate it wraps every article in."""

    name: str
    slug: str
    header: str
    footer: list[str]
    byline: str


@dataclass
class Item:
    """One page to serve: ``story`` is the ground-truth cluster (None for a singleton)."""

    key: str
    outlet: str
    title: str
    paragraphs: list[str] | None  # None: serve ``raw_html`` unchanged (an original page)
    story: str
    raw_html: bytes | None = None
    kind: str = "variant"  # original | variant | topical | same-outlet


@dataclass
class Corpus:
    items: list[Item] = field(default_factory=list)
    outlets: list[Outlet] = field(default_factory=list)


def make_outlets(n: int, rng: random.Random) -> list[Outlet]:
    names = ["Daily Ledger", "Morning Courier", "Evening Tribune", "Valley Gazette", "Harbor Post",
             "Metro Chronicle", "Coastal Herald", "Northern Star", "Capital Wire", "Prairie Times"]
    out = []
    for i in range(n):
        name = names[i % len(names)] + ("" if i < len(names) else f" {i}")
        slug = re.sub(r"\W+", "-", name.lower())
        out.append(Outlet(
            name=name, slug=slug,
            header=f"{name} | News you can trust since 19{rng.randint(10, 99)}. Breaking news, weather and sport for the region.",
            footer=[f"Copyright {name}. All rights reserved. This material may not be published, broadcast, rewritten or redistributed without permission.",
                    f"Sign up for the {name} newsletter to get the day's top stories delivered to your inbox every morning, and follow us on social media for live updates.",
                    f"Have a news tip? Contact the {name} newsroom by email or call our tip line; we read every message."],
            byline=f"By {rng.choice(['Anna', 'Ben', 'Carla', 'Dmitri', 'Elif', 'Farah', 'Gus'])} "
                   f"{rng.choice(['Miller', 'Okafor', 'Nguyen', 'Rossi', 'Kowalski', 'Haddad'])}, {name} staff writer",
        ))
    return out


def load_ground_truth(directory: Path, limit: int | None = None) -> list[tuple[str, list[str], bytes | None]]:
    """(id, body paragraphs, page html or None) of the real pages, in a stable order."""
    gt = json.loads((directory / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for pid in sorted(gt)[:limit]:
        paras = [p.strip() for p in gt[pid]["articleBody"].split("\n") if p.strip()]
        page = directory / "html" / f"{pid}.html"
        out.append((pid, paras, page.read_bytes() if page.is_file() else None))
    return out


def _edit_words(text: str, rate: float, rng: random.Random) -> str:
    """Edit about ``rate`` of the words: synonyms, changed numbers, insertions, deletions."""
    toks = _WORD.findall(text)
    out: list[str] = []
    for t in toks:
        if not t[0].isalnum() or rng.random() >= rate:
            out.append(t)
            continue
        op = rng.random()
        if t.isdigit():
            out.append(str(int(t) + rng.randint(1, 9)))  # syndication changes numbers
        elif t.lower() in _SWAPS and op < 0.6:
            out.append(_SWAPS[t.lower()])
        elif op < 0.35:
            out.append(t + " " + rng.choice(_FILLER))
        elif op < 0.6:
            out.append("")  # dropped word
        else:
            out.append(rng.choice(_FILLER) if t.islower() else t.upper() if len(t) < 4 else t[:1] + t[1:].lower())
    return re.sub(r"  +", " ", "".join(out)).strip()


def _repunctuate(text: str, rng: random.Random) -> str:
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'")
    if rng.random() < 0.5:
        text = re.sub(r'"([^"]*)"', "\u00ab\\1\u00bb", text)
    if rng.random() < 0.5:
        text = text.replace(" - ", " \u2014 ").replace(", ", " , " if rng.random() < 0.2 else ", ")
    if rng.random() < 0.5:
        text = text.replace("; ", ". ")
    return text


def _rewrite_lead(paras: list[str], rng: random.Random) -> list[str]:
    """Outlets often rewrite the first paragraph in their own words: same facts, new sentence."""
    if not paras:
        return paras
    clauses = [c.strip() for c in re.split(r"[,;]", paras[0]) if c.strip()]
    rng.shuffle(clauses)
    lead = _edit_words(", ".join(clauses), 0.4, rng)
    return [lead[:1].upper() + lead[1:]] + paras[1:]


def _change_quotes(text: str, rng: random.Random) -> str:
    """Quotes get shortened or paraphrased in rewrites."""
    def sub(m: re.Match[str]) -> str:
        words = m.group(1).split()
        if len(words) > 6 and rng.random() < 0.5:
            return '"' + " ".join(words[: max(3, len(words) * 2 // 3)]) + '..."'
        return m.group(0)
    return re.sub(r'"([^"]{10,})"', sub, text)


def syndicate(paras: list[str], rng: random.Random) -> list[str]:
    """A syndicated copy of the body: trimmed, edited, re-punctuated, paragraphs dropped/merged."""
    total = sum(len(p.split()) for p in paras)
    target = total * rng.uniform(0.5, 0.7)
    body = list(paras)
    if rng.random() < 0.3:
        body = _rewrite_lead(body, rng)
    # drop a middle paragraph or two (not the lead) when there are enough
    if len(body) > 6:
        for _ in range(rng.randint(0, 2)):
            del body[rng.randrange(1, len(body) - 1)]
    # trim from the bottom, the way copy desks cut wire stories
    kept: list[str] = []
    n = 0
    for p in body:
        if n >= target and kept:
            break
        w = p.split()
        if n + len(w) > target * 1.15 and kept:
            p = " ".join(w[: max(5, int(target - n))])
        kept.append(p)
        n += len(p.split())
    # merge some adjacent paragraphs
    merged: list[str] = []
    for p in kept:
        if merged and rng.random() < 0.25:
            merged[-1] = merged[-1] + " " + p
        else:
            merged.append(p)
    rate = rng.uniform(0.05, 0.10)
    out = [_repunctuate(_edit_words(p, rate, rng), rng) for p in merged]
    if rng.random() < 0.4:
        out = [_change_quotes(p, rng) for p in out]
    return [p for p in out if p.strip()]


def headline(paras: list[str], rng: random.Random) -> str:
    words = re.findall(r"\w+", " ".join(paras[:2]))
    caps = [w for w in words if w[:1].isupper()][:4]
    return f"{rng.choice(['Update:', 'Report:', 'Explainer:', 'Watch:', ''])} {' '.join(caps) or 'News'} " \
           f"{rng.choice(['in focus', 'latest', 'what we know', 'story develops', 'draws reaction'])}".strip()


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CHAIN_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:['-][^\W{_CJK}]+)*|[.,;:\u3002\u3001]")


def _join(words: list[str]) -> str:
    out = ""
    for w in words:
        glue = "" if not out or re.match(rf"[{_CJK}.,;:\u3002\u3001]", w) and (w in ".,;:\u3002\u3001" or re.match(rf"[{_CJK}]", out[-1])) else " "
        out += glue + w
    return out


def _chain(pages: list[list[str]]) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {}
    for paras in pages:
        words = _CHAIN_TOKEN.findall(" ".join(paras))
        for a, b in zip(words, words[1:], strict=False):
            succ.setdefault(a.lower(), []).append(b)
    return succ


def topical(paras: list[str], chain: dict[str, list[str]], rng: random.Random) -> list[str]:
    """A different article on the same topic: the same names and vocabulary, other sentences.

    A word chain over all pages that prefers the original's words, the way a second reporter
    covering the same event uses its names and terms but writes every sentence anew.
    """
    text = " ".join(paras)
    own = [w.lower() for w in _CHAIN_TOKEN.findall(text)]
    vocab = set(own)
    triples = set(zip(own, own[1:], own[2:], strict=False))
    names = re.findall(r"\b[A-Z][a-z]{2,}\b", text) or ["Officials"]
    n_words = max(60, int(len(_CHAIN_TOKEN.findall(text)) * rng.uniform(0.4, 0.8)))
    out: list[str] = []
    para: list[str] = []
    cur = rng.choice(names)
    para.append(cur)
    for _ in range(n_words):
        succ = chain.get(cur.lower()) or [rng.choice(names)]
        # mostly avoid re-creating the original's word triples: its sentences are not to be copied
        prev = para[-2].lower() if len(para) > 1 else ""
        fresh = [w for w in succ if (prev, cur.lower(), w.lower()) not in triples] or succ
        if rng.random() < 0.2:
            fresh = succ
        topical_succ = [w for w in fresh if w.lower() in vocab]
        cur = rng.choice(topical_succ if topical_succ and rng.random() < 0.6 else fresh)
        para.append(cur)
        if cur in (".", "\u3002") and len(para) > 40:
            out.append(_join(para))
            para = [rng.choice(names)]
    if len(para) > 1:
        out.append(_join(para) + ".")
    return out


def build(pages: list[tuple[str, list[str], bytes | None]], variants: int = 3, n_outlets: int = 6,
          seed: int = 7) -> Corpus:
    """Originals, ``variants`` syndicated copies each (one per outlet), and the negatives.

    An original without its page html is served as a plain page of its ground-truth body.
    """
    rng = random.Random(seed)
    corpus = Corpus(outlets=make_outlets(n_outlets, rng))
    chain = _chain([p for _, p, _ in pages])
    for pid, paras, raw in pages:
        story = pid[:12]
        corpus.items.append(Item(key=f"{story}-orig", outlet="origin", title=headline(paras, rng),
                                 paragraphs=None if raw else paras, story=story, raw_html=raw,
                                 kind="original"))
        for v, outlet in enumerate(rng.sample(corpus.outlets, min(variants, len(corpus.outlets)))):
            body = syndicate(paras, rng)
            corpus.items.append(Item(key=f"{story}-v{v}", outlet=outlet.name, title=headline(body, rng),
                                     paragraphs=body, story=story))
        # a different article on the same topic, at an outlet that also carries the story; not for
        # scripts without spaces, where the chain would only recombine the original's own phrases
        if len(re.findall(rf"[{_CJK}]", " ".join(paras))) > 0.3 * len(" ".join(paras)):
            continue
        outlet = rng.choice(corpus.outlets)
        corpus.items.append(Item(key=f"{story}-topic", outlet=outlet.name, title=headline(paras, rng),
                                 paragraphs=topical(paras, chain, rng), story=f"{story}-topic", kind="topical"))
    return corpus


def page_html(item: Item, outlet: Outlet) -> bytes:
    """A news page in the outlet's template; boilerplate inside the article, as outlets do."""
    assert item.paragraphs is not None
    e = html.escape
    paras = [outlet.byline, *item.paragraphs, *outlet.footer]
    body = "\n".join(f"<p>{e(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{e(item.title)} | {e(outlet.name)}</title>
<meta property="og:title" content="{e(item.title, quote=True)}">
<meta property="article:published_time" content="2025-09-24T10:15:00+00:00">
</head><body><header><p>{e(outlet.header)}</p><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>
<main><article><h1>{e(item.title)}</h1>
{body}
</article></main><footer><p>{e(outlet.name)} - about - contact - privacy</p></footer></body></html>""".encode()
