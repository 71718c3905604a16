"""Stage: match. Rules (boolean, proximity, entity queries) against an article, with the
statement quoted.

Public interface, used by the pipeline and the CLI:

- ``Document``: what a rule sees of an article.
- ``compile_query(query, entities)``: parse a query, raising ``QuerySyntaxError`` with a column.
- ``RuleSet(rules, entities).match(doc)``: every matching rule, each with hits and statements.
"""

from collections.abc import Mapping
from typing import Any

from monitor import config
from monitor.match.engine import RuleSet, body_statements, compile_query
from monitor.match.query import QuerySyntaxError, entity_alias_problem
from monitor.match.types import Document, Hit, RuleMatch, Statement


def query_problem(query: str, entities: Mapping[str, Any]) -> str | None:
    """Why a rule's query cannot be used (with a caret under the column), or None."""
    try:
        compile_query(query, entities)
    except QuerySyntaxError as exc:
        return exc.describe()
    return None


config.register_query_check(query_problem)
config.register_alias_check(entity_alias_problem)

__all__ = ["Document", "Hit", "QuerySyntaxError", "RuleMatch", "RuleSet", "Statement", "body_statements",
           "compile_query"]
