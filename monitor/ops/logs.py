"""Logging: readable lines by default, JSON lines with ``--log-format json``.

Every record about a source, article or delivery carries its id as a field (``source_id``,
``article_id``, ``delivery_id``): from ``extra=``, from the poll being run (a context variable
the daemon sets), or from the message itself ("source 12 ...", "delivery 7 ..."). Secrets from
the config (see ``Config.secrets``, ``monitor.clean.redact``) are replaced by ``***`` in the
final text of every line, tracebacks included, whichever code logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from monitor.clean import redact, set_secrets

__all__ = ["redact", "set_secrets", "setup"]

SOURCE_ID: ContextVar[int | None] = ContextVar("source_id", default=None)
ID_FIELDS = ("source_id", "article_id", "delivery_id")
_ID_IN_TEXT = re.compile(r"\b(source|article|delivery) #?(\d+)\b")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler", "trafilatura",
         "htmldate", "aiosmtpd", "mail.log", "alembic")  # alembic: "Context impl SQLiteImpl." on every start

class IdFilter(logging.Filter):
    """Puts source/article/delivery ids on the record as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "source_id", None) is None:
            sid = SOURCE_ID.get()
            if sid is not None:
                record.source_id = sid
        try:
            message = record.getMessage()
        except Exception:
            return True
        for kind, num in _ID_IN_TEXT.findall(message):
            if getattr(record, f"{kind}_id", None) is None:
                setattr(record, f"{kind}_id", int(num))
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # The ids the message does not already name, so every line about a source shows it.
        # (Found with the one compiled pattern: a pattern per id compiled anew for nearly every
        # line, as ids outnumber re's cache: ~360 compiles in a 300-article run.)
        named = set(_ID_IN_TEXT.findall(record.getMessage()))
        extra = [f"{k}={getattr(record, k)}" for k in ID_FIELDS
                 if getattr(record, k, None) is not None and (k.split("_")[0], str(getattr(record, k))) not in named]
        if extra:
            line += " [" + " ".join(extra) + "]"
        return redact(line)


class JsonLineFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         json_ensure_ascii=False)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        for k in ID_FIELDS:
            v = getattr(record, k, None)
            if v is not None:
                log_record[k] = v

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once, for the CLI and the daemon."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(IdFilter())
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
