"""Stage: match. Rules (boolean, proximity, entity queries) against an article, with the
statement quoted.

Public interface, used by the pipeline and the CLI:

- ``Document``: what a rule sees of an article.
- ``compile_query(query, entities)``: parse a query, raising ``QuerySyntaxError`` with a column.
- ``RuleSet(rules, entities).match(doc)``: every matching rule, each with hits and statements.
"""

from monitor.match.engine import RuleSet, compile_query
from monitor.match.query import QuerySyntaxError
from monitor.match.types import Document, Hit, RuleMatch, Statement

__all__ = ["Document", "Hit", "QuerySyntaxError", "RuleMatch", "RuleSet", "Statement", "compile_query"]
