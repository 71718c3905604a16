"""The Jinja2 sandbox alert templates run in, bounded in output and time.

Apart from ``monitor.alerts.render`` so that Jinja2 is imported with the first template compiled
(a config override's check, the first alert), not by every command that loads a config or by
the daemon before its first poll (README "Start-up time").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 1_000_000  # characters one template may produce (or one value it may build)
RENDER_SECONDS = 2.0

_DEADLINE: ContextVar[float | None] = ContextVar("template_deadline", default=None)


def _tick() -> None:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise SecurityError(f"template took longer than {RENDER_SECONDS:g} s; stopped")


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox (no attribute escapes, ``range`` up to 100,000) plus bounds on what a
    template may build and for how long it may run: ``{{ 'x' * 2000000000 }}`` took 43 s and
    7.9 GB in check-config. Time is checked at every call, attribute and item access, operator
    and output chunk."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT:
                    raise SecurityError(f"a template value longer than {MAX_OUTPUT} characters")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent larger than 64 in a template")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)


def render_template(template: Any, context: Mapping[str, Any]) -> str:
    token = _DEADLINE.set(time.monotonic() + RENDER_SECONDS)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"template output longer than {MAX_OUTPUT} characters")
            _tick()
            out.append(chunk)
        return "".join(out)
    except (OverflowError, MemoryError, RecursionError) as exc:  # e.g. range(10**8)
        raise SecurityError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _DEADLINE.reset(token)


def sandbox(autoescape: bool) -> _BoundedSandbox:
    """A fresh bounded sandbox: HTML parts autoescape, text parts do not."""
    return _BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=autoescape)
