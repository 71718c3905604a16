"""The mojibake repair's fast pre-test gives ftfy's answer (``ftfy.badness.is_bad``) on any text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ftfy.badness import BADNESS_RE, MOJIBAKE_CATEGORIES, is_bad
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.parse.encoding import _may_be_mojibake, fix_mojibake

ROOT = Path(__file__).resolve().parent.parent

# Every character ftfy's expression names, plus ASCII letters, digits, punctuation and spaces.
_NAMED = sorted({c for c in re.sub(r"\\x..", "", BADNESS_RE.pattern) if not c.isascii()}
                | {c for v in MOJIBAKE_CATEGORIES.values() for c in v if not c.isascii()}
                | {chr(c) for c in range(0x80, 0xA0)})
_ALPHABET = _NAMED + list("aAzZ éÉüß.,!?'\"-()\n\t0") + ["\xa0"]


def test_every_named_character_is_non_ascii() -> None:
    # the pre-test searches around non-ASCII characters only: a match must contain one
    assert all(not c.isascii() for v in MOJIBAKE_CATEGORIES.values() for c in v.replace("\\x80-\\x9f", "") if c != "-")


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40), st.text(alphabet="ab .\n", max_size=30))
def test_same_answer_as_ftfy(core: str, pad: str) -> None:
    for text in (core, pad + core, core + pad, pad + core + pad + core):
        assert _may_be_mojibake(text) == is_bad(text), text


def test_repairs_and_leaves_alone() -> None:
    assert fix_mojibake("M\u00c3\u00bcnchen is in Bavaria, as it was.") == "München is in Bavaria, as it was."
    quoted = "It\u2019s \u201cfine\u201d \u2014 na\u00efve caf\u00e9 in M\u00fcnchen. " * 50
    assert fix_mojibake(quoted) == quoted
    assert fix_mojibake(quoted + "Ã© " + quoted) == quoted + "é " + quoted


def test_a_clean_text_is_tested_without_importing_ftfy() -> None:
    # ftfy's package imports wcwidth's width tables (~6 MB, ~50 ms in the daemon and in the
    # extraction workers' forkserver); only a text its test flags needs ftfy itself
    code = """if True:
        import json, sys
        from monitor.parse.encoding import _badness, decode, fix_mojibake
        clean = "It\u2019s \u201cfine\u201d \u2014 na\u00efve caf\u00e9. " * 20
        same = fix_mojibake(clean) == clean and decode(clean.encode()).text == clean
        before = [m for m in ("ftfy", "wcwidth") if m in sys.modules]
        pattern = _badness().BADNESS_RE.pattern
        repaired = fix_mojibake("M\u00c3\u00bcnchen ist sch\u00c3\u00b6n")
        import ftfy.badness
        print(json.dumps([same, before, repaired, pattern == ftfy.badness.BADNESS_RE.pattern]))
        """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, [], "München ist schön", True]
