"""Stage: match. Rules (boolean, proximity, entity queries) against an article, with the
statement quoted.

Public interface, used by the pipeline and the CLI:

- ``Document``: what a rule sees of an article.
- ``compile_query(query, entities)``: parse a query, raising ``QuerySyntaxError`` with a column.
- ``RuleSet(rules, entities, examples).match(doc)``: every matching rule, each with hits and
  statements. ``examples`` maps a rule name to its (examples, counterexamples) texts, which
  calibrate its ``about("...")`` clauses (monitor.match.meaning); ``RuleSet.uses_about`` says
  whether the embedding model is needed.
- ``rule_set(config)``: the RuleSet of a config's rules; ``trial_rule(query, config, name)``: one
  query as rule ``name`` (its examples); ``uses_about(config)``: whether a rule needs the sentence model.

Importing the package registers the query and alias checks with the config; the engine is
imported with the first RuleSet, so ``check-config`` does not compile the speaker patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from monitor import config
from monitor.match.query import (
    QuerySyntaxError,
    entity_alias_problem,
    has_about,
    may_hold_about,
    parse_query,
)
from monitor.match.types import Document, Hit, RuleMatch, Statement
from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.match.engine import RuleSet, body_statements, compile_query, with_speakers


def query_problem(query: str, entities: Mapping[str, Any]) -> str | None:
    """Why a rule's query cannot be used (with a caret under the column), or None."""
    try:
        tree = parse_query(query, entities)  # = compile_query, without importing the engine
    except QuerySyntaxError as exc:
        return exc.describe()
    if has_about(tree):
        from monitor.embed import model_problem

        problem = model_problem()
        if problem:
            return f"about() cannot be used: {problem}"
    return None


def _entities(cfg: config.Config | None) -> dict[str, config.EntityConfig]:
    """The config's entities by name, as rules' queries refer to them."""
    return {e.name: e for e in cfg.entities} if cfg else {}


def _as_daemon_runs(queries: list[tuple[str, str]], cfg: config.Config | None,
                    rules: Iterable[config.RuleConfig]) -> RuleSet:
    """``queries`` (name, query) compiled as the daemon runs its rules: with the config's
    entities and the examples/counterexamples of ``rules``, which calibrate about() clauses.
    The one construction of a rule set, so no place that shows what a rule matches builds it
    otherwise (the console's article page, once built without the examples, explained about()
    clauses at the default threshold while the daemon used the calibrated one)."""
    from monitor.match.engine import RuleSet

    return RuleSet(queries, _entities(cfg), {r.name: (r.examples, r.counterexamples) for r in rules})


def rule_set(cfg: config.Config, names: set[str] | None = None) -> RuleSet:
    """The config's rules (or the named ones), as the daemon runs them."""
    rules = [r for r in cfg.rules if names is None or r.name in names]
    return _as_daemon_runs([(r.name, r.query) for r in rules], cfg, rules)


def trial_rule(query: str, cfg: config.Config | None, rule: str | None = None) -> RuleSet:
    """One query being tried (test-rule, backtest, the console's rule editor) as the daemon would
    run it as the configured rule ``rule``: with the config's entities and that rule's
    examples/counterexamples (a new query, ``rule`` None, has none). Named ``rule``, or "query"."""
    return _as_daemon_runs([(rule or "query", query)], cfg, [r for r in cfg.rules if r.name == rule] if cfg else [])


def prepare_meanings(cfg: config.Config) -> None:
    """Build the about() clauses' meanings (the model's vectors of their statements and
    examples, kept by ``build_meaning``) without compiling the rules: the daemon's start does
    this on the thread that loads the model, and the rule set the pipeline compiles later finds
    them built. (Compiling the whole rule set there compiled every rule twice.)"""
    from monitor.match.engine import about_clauses
    from monitor.match.meaning import build_meaning

    entities = _entities(cfg)
    for r in filter(lambda r: may_hold_about(r.query), cfg.rules):
        for clause in about_clauses(parse_query(r.query, entities)):
            build_meaning(clause.text, r.examples, r.counterexamples, clause.threshold)


def uses_about(cfg: config.Config) -> bool:
    """Whether a rule of the config has an ``about()`` clause (then the sentence model is needed),
    known without compiling the rules."""
    entities = _entities(cfg)
    return any(has_about(parse_query(r.query, entities)) for r in cfg.rules if may_hold_about(r.query))


config.register_query_check(query_problem)
config.register_alias_check(entity_alias_problem)

__all__ = ["Document", "Hit", "QuerySyntaxError", "RuleMatch", "RuleSet", "Statement", "body_statements",
           "compile_query", "prepare_meanings", "rule_set", "trial_rule", "uses_about", "with_speakers"]
# The engine (speaker patterns, Aho-Corasick) on first use: check-config needs only the parser.
__getattr__ = lazy_exports(__name__, dict.fromkeys(("RuleSet", "body_statements", "compile_query", "with_speakers"),
                                                   "monitor.match.engine"))
