"""Editing and removing one ``[[source]]`` entry of config.toml from the console.

The edit is made on the text: the entry's own lines (its ``[[source]]`` header, its keys, its
``[source.x]`` sub-tables) are replaced or removed and every other byte of the file stays as it
was, comments and the blank lines and comments between entries included. The result must parse
with the entry where it was (same number of sources, the others unchanged) and pass the daemon's
own loader before it atomically replaces the file (``rules.write_config``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomlkit

from monitor.config import Config
from monitor.web.rules import SaveError, write_config

_HEADER = re.compile(r"^\s*\[")
_SOURCE = re.compile(r"^\s*\[\[\s*source\s*\]\]\s*(#.*)?$")
_SUBTABLE = re.compile(r"^\s*\[\s*source\s*\.")
_TRIVIA = re.compile(r"^\s*(#.*)?$")


def _sources(text: str, where: str) -> list[dict[str, Any]]:
    try:
        found = tomlkit.parse(text).unwrap().get("source", [])
    except Exception as exc:
        raise SaveError([f"{where}: not valid TOML: {exc}"]) from None
    return found if isinstance(found, list) else []


def _span(lines: list[str], index: int) -> tuple[int, int]:
    """Lines [start, end) of the index-th ``[[source]]`` entry, without the blank lines and
    comments after it (they introduce what follows)."""
    starts = [i for i, line in enumerate(lines) if _SOURCE.match(line)]
    start = starts[index]
    end = start + 1
    for i in range(start + 1, len(lines)):
        if _HEADER.match(lines[i]) and not _SUBTABLE.match(lines[i]):
            break
        end = i + 1
    while end > start + 1 and _TRIVIA.match(lines[end - 1]):
        end -= 1
    return start, end


def _locate(path: Path, name: str) -> tuple[str, list[str], int, list[dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    sources = _sources(text, path.name)
    names = [s.get("name") for s in sources]
    if name not in names:
        raise SaveError([f"no source named {name!r} in {path.name}"])
    lines = text.splitlines(keepends=True)
    if len([line for line in lines if _SOURCE.match(line)]) != len(sources):
        # e.g. an inline array of tables: not edited by text, to be safe
        raise SaveError([f"{path.name}: sources not written as [[source]] tables; edit the file by hand"])
    return text, lines, names.index(name), sources


def source_entry(path: Path, name: str) -> str:
    """The entry as it is written in the file (its comments included), for the edit form."""
    _text, lines, index, _ = _locate(path, name)
    start, end = _span(lines, index)
    return "".join(lines[start:end]).rstrip() + "\n"


def replace_source(path: Path, name: str, entry: str) -> Config:
    """Put ``entry`` (one ``[[source]]`` table as TOML) where source ``name`` was."""
    entry = entry.replace("\r\n", "\n")  # a browser sends a textarea's lines with CRLF
    new = _sources(entry, "the edited source")
    try:
        only_sources = set(tomlkit.parse(entry).keys()) == {"source"}
    except Exception:
        only_sources = False
    if len(new) != 1 or not only_sources:
        raise SaveError(["the edited text must be exactly one [[source]] table"])
    text, lines, index, sources = _locate(path, name)
    start, end = _span(lines, index)
    body = entry.strip() + "\n"
    if end < len(lines) and not lines[end - 1].endswith("\n"):
        body = "\n" + body
    result = "".join(lines[:start]) + body + "".join(lines[end:])
    _check(result, path, sources[:index] + new + sources[index + 1:])
    return write_config(path, result)


def remove_source(path: Path, name: str) -> Config:
    """Take source ``name`` out of the config (its stored articles stay in the database)."""
    text, lines, index, sources = _locate(path, name)
    start, end = _span(lines, index)
    rest = lines[end:]
    # The blank line that separated it from what follows goes with it.
    if rest and not rest[0].strip() and (start == 0 or not lines[start - 1].strip()):
        rest = rest[1:]
    result = "".join(lines[:start]) + "".join(rest)
    _check(result, path, sources[:index] + sources[index + 1:])
    return write_config(path, result)


def _check(result: str, path: Path, expected: list[dict[str, Any]]) -> None:
    """The text edit did what it meant to: exactly the expected sources, in order."""
    if _sources(result, path.name) != expected:
        raise SaveError([f"{path.name}: could not edit this source by itself (unusual layout); edit the file by hand"])
