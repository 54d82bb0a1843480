"""Reading PromQL: which series an expression selects, and the aggregation around each.

Read from the syntax tree of promql-parser (Python bindings of a Rust PromQL parser), never with
regular expressions: label values, durations, ``offset``, ``bool``, ``on``/``group_left``, ``by``
after the argument, ``{__name__="..."}`` selectors and subqueries are the parser's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import promql_parser

Grouping = Literal["by", "without", ""]
_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


class PromqlError(ValueError):
    """An expression is not PromQL; the message quotes it and says why."""


@dataclass(frozen=True)
class Aggregation:
    """An aggregation such as ``sum without (instance, job)``: its operator, ``by``/``without``/none
    and the labels listed."""

    op: str
    grouping: Grouping
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Selection:
    """A series an expression selects: its name, its label matchers as (label, operator, value)
    such as ``("slo", "=", "latency")``, and the innermost aggregation around it (None when none)."""

    name: str
    aggregation: Aggregation | None
    matchers: tuple[tuple[str, str, str], ...] = ()


def parse(expr: str) -> promql_parser.Expr:
    """The syntax tree of ``expr``; raises :class:`PromqlError` when it is not PromQL."""
    try:
        return promql_parser.parse(expr)
    except (ValueError, TypeError) as err:
        raise PromqlError(f"not PromQL: {expr!r}: {err}") from err


def _operator(op: promql_parser.MatchOp) -> str:
    """``=``, ``!=``, ``=~`` or ``!~`` (the parser's operators compare equal but do not hash)."""
    return next(text for known, text in _OPERATORS if op == known)


def _name(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    return ""


def _aggregation(node: promql_parser.AggregateExpr) -> Aggregation:
    modifier = node.modifier
    if modifier is None:
        return Aggregation(str(node.op), "", ())
    grouping: Grouping = "by" if modifier.type == promql_parser.AggModifierType.By else "without"
    return Aggregation(str(node.op), grouping, tuple(modifier.labels))


def selections(expr: str) -> list[Selection]:
    """Every series selector of ``expr`` that names a series, in order, with its innermost
    aggregation. Selectors without a name (``{job="x"}``) are left out."""
    around: list[Aggregation] = []
    found: list[Selection] = []

    def enter(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.AggregateExpr):
            around.append(_aggregation(node))
        elif isinstance(node, promql_parser.VectorSelector) and (name := _name(node)):
            matchers = tuple(
                (matcher.name, _operator(matcher.op), matcher.value)
                for matcher in node.matchers.matchers
                if matcher.name != "__name__"
            )
            found.append(Selection(name, around[-1] if around else None, matchers))
        return True

    def leave(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.AggregateExpr):
            around.pop()
        return True

    promql_parser.walk(parse(expr), enter, leave)
    return found


def series_names(expr: str) -> set[str]:
    """The names of the series ``expr`` selects: metrics, recording rules, ``up``, ``ALERTS``."""
    return {selection.name for selection in selections(expr)}


def matchers(selector: str) -> dict[str, str]:
    """The equality matchers of one series selector: ``a{b="1", c=~"x"}`` gives ``{"b": "1"}``."""
    if not isinstance(parse(selector), promql_parser.VectorSelector):
        raise PromqlError(f"not a series selector: {selector!r}")
    (selection,) = selections(selector)
    return {label: value for label, operator, value in selection.matchers if operator == "="}


def range_calls(expr: str) -> list[tuple[str, timedelta]]:
    """(function, range) of every function call of ``expr`` over a range selector, such as
    ``("rate", 5 minutes)`` for ``rate(a[5m])``; subqueries are not range selectors."""
    found: list[tuple[str, timedelta]] = []

    def enter(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.Call):
            found.extend(
                (node.func.name, argument.range)
                for argument in node.args
                if isinstance(argument, promql_parser.MatrixSelector)
            )
        return True

    promql_parser.walk(parse(expr), enter)
    return found
