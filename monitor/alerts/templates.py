"""A channel's ``Templates``: the default templates plus its overrides, each compiled on first use.

Apart from the rest of ``monitor.alerts.render`` (the render context, the payloads' pydantic
models, markupsafe), which it imports only to render or to try an override: every channel makes
its ``Templates`` when it is built, at the daemon's start, and the first poll does not wait for
those imports (issue 15). ``monitor.alerts.render`` re-exports ``Templates``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.alerts.marks import KINDS, PARTS, TEMPLATE_KEYS

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

log = logging.getLogger("monitor.alerts.render")  # the logger its warning had before the move
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


class Templates:
    """Default templates plus a channel's overrides, each compiled once, on first use."""

    def __init__(self, overrides: Mapping[str, str] | None = None, tz: tzinfo | None = None):
        self.tz = tz  # times are shown in the channel's timezone
        self._envs: dict[bool, Any] = {}  # autoescape -> its sandbox, made with the first template
        self._compiled: dict[tuple[str, str], Any] = {}
        self._sources: dict[tuple[str, str], str] = {}
        overrides = dict(overrides or {})
        for kind in KINDS:
            for part in PARTS:
                source = overrides.get(part if kind == "alert" else f"{kind}_{part}")
                if source is not None:
                    self._sources[(kind, part)] = source
        self._overridden: set[tuple[str, str]] = set(self._sources)

    def _template(self, kind: str, part: str) -> Any:
        """The compiled template, compiled on first use: a daemon builds every channel's templates
        at start, and compiling all of them (0.1 s) would delay its first poll (README "Start-up
        time"). Overrides are compiled and tried at config load all the same (``problems``)."""
        template = self._compiled.get((kind, part))
        if template is None:
            source = self._sources.get((kind, part))
            if source is None:
                source = (TEMPLATE_DIR / f"{kind}.{part}.j2").read_text(encoding="utf-8")
            html_part = part == "html"
            env = self._envs.get(html_part)
            if env is None:
                from monitor.alerts.sandbox import sandbox

                env = self._envs[html_part] = sandbox(autoescape=html_part)
            template = self._compiled[(kind, part)] = env.from_string(source)
        return template

    def render(self, msg: AlertMessage, part: str) -> str:
        from jinja2 import TemplateError

        from monitor.alerts.sandbox import render_template

        kind = "notice" if msg.kind == "test" else msg.kind
        try:
            out = render_template(self._template(kind, part), msg.context(self.tz))
        except TemplateError as exc:
            if (kind, part) not in self._overridden:
                raise
            # Checked at config load against a sample, but a real alert can still differ (say,
            # statements[2] on an alert with one): the default layout beats no alert at all.
            log.warning("template %r failed on delivery %s (%s: %s); the default was used",
                        part if kind == "alert" else f"{kind}_{part}", msg.delivery_key,
                        type(exc).__name__, exc)
            from monitor.alerts.render import default_templates

            return default_templates().render(msg, part)
        return " ".join(out.split()) if part == "subject" else out

    @staticmethod
    def problems(overrides: Mapping[str, Any]) -> list[str]:
        """Compile and sample-render each override; a problem names the key and the error."""
        problems = []
        for key, source in overrides.items():
            if key not in TEMPLATE_KEYS:
                continue
            if not isinstance(source, str):
                problems.append(f"template {key!r} must be a string")
                continue
            from jinja2 import TemplateError  # only a channel with an override needs Jinja2 here

            from monitor.alerts.render import _sample_context
            from monitor.alerts.sandbox import render_template

            kind, _, part = key.rpartition("_")
            kind = kind or "alert"
            try:
                t = Templates({key: source})
                render_template(t._template(kind, part), _sample_context(kind))
            except TemplateError as exc:
                lineno = getattr(exc, "lineno", None)
                line = f" (line {lineno})" if lineno else ""
                problems.append(f"template {key!r}{line}: {type(exc).__name__}: {exc}")
        return problems
