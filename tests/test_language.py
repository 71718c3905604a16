"""Language identification from the model mapped from its unpacked copy: py3langid's answers."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from monitor.extract import language

TEXTS = [
    "The foreign minister said on Tuesday that the talks would resume in Astana next week.",
    "Министр иностранных дел заявил во вторник, что переговоры возобновятся в Астане на следующей неделе.",
    "Der Außenminister sagte am Dienstag, die Gespräche würden nächste Woche in Astana fortgesetzt.",
    "Le ministre des Affaires étrangères a déclaré mardi que les pourparlers reprendraient la semaine prochaine.",
    "Сыртқы істер министрі сейсенбіде келіссөздер келесі аптада Астанада жалғасатынын айтты.",
    "外交部长周二表示，会谈将于下周在阿斯塔纳恢复。",
]


def test_mapped_model_answers_as_py3langid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for attempt in range(2):  # unpacked, then mapped from the copy made the first time
        ptc, pc, classes, nextmove, row, out = language._mapped(MODEL_DIR / MODEL_FILE)
        mapped = LanguageIdentifier(ptc, pc, classes, nextmove, out, norm_probs=True, tk_row=row)
        for text in TEXTS:
            assert mapped.classify(text) == reference.classify(text), (attempt, text)
        assert len(list(tmp_path.iterdir())) == 1


def test_unwritable_cache_loads_the_model_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(blocker / "cache"))
    language._identifier.cache_clear()
    try:
        assert language.detect_language(TEXTS[1]) == "ru"
    finally:
        language._identifier.cache_clear()


def test_no_home_directory_loads_the_model_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user with neither $HOME nor a passwd entry (a container's arbitrary uid) and no cache
    variable: Path.home() fails; the model loads in memory as with an unwritable cache."""
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    for name in ("MONITOR_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    language._identifier.cache_clear()
    try:
        assert language.detect_language(TEXTS[1]) == "ru"
    finally:
        language._identifier.cache_clear()


def test_the_model_adds_little_to_the_python_heap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The extraction workers share the model their forkserver loaded only as long as they do not
    write to it, and a worker that reads a Python object writes its reference count: the model
    holds its per-state tables in arrays, not in Python objects (py3langid's own list of row
    offsets was ~3.7 MB of ints), and answers as py3langid does."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    language._identifier.cache_clear()
    try:
        language._identifier()  # unpacks the copy
        language._identifier.cache_clear()
        tracemalloc.start()
        try:
            identifier = language._identifier()
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert held < 1_500_000
        for text in TEXTS:
            assert identifier.classify(text) == reference.classify(text), text
    finally:
        language._identifier.cache_clear()


def _pages_text() -> list[str]:
    """Long and varied text: the test fixtures' article pages, markup and all."""
    folder = Path(__file__).parent / "fixtures" / "articles"
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.html"))]


def test_numpy_walk_counts_what_py3langids_walk_counts() -> None:
    """Every feature, count and their order as py3langid's own walk of the DFA, on texts in
    several scripts, whole pages and random bytes; found by the NumPy walk, not its fallback."""
    import random

    from py3langid.langid import visit_counts

    identifier = language._identifier()
    rng = random.Random(7)
    texts = [t.encode() for t in [*TEXTS, *_pages_text(), "", "a", "ab"]]
    texts += [rng.randbytes(rng.randrange(1, 3000)) for _ in range(50)]
    for text in texts:
        ours = language._visits(identifier.tables, text)
        theirs = visit_counts(identifier.tk_nextmove, identifier._rowbase, identifier.tk_output, text)
        assert ours is not None, text[:80]
        assert list(ours.items()) == list((theirs or {}).items()), text[:80]


def test_a_walk_reads_few_pages_of_the_transitions(tmp_path: Path) -> None:
    """The NumPy walk reads the transitions laid out by byte (``_mapped_by_byte``): the pages of
    the model a worker holds in memory after its texts are those it read, and by byte the same
    texts read under half the pages they read in py3langid's layout, row after row."""
    import json
    import subprocess
    import sys

    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from monitor.extract import language\n"
        "from py3langid.langid import MODEL_DIR, MODEL_FILE\n"
        "identifier = language._identifier()\n"
        "here = language._model_dir(MODEL_DIR / MODEL_FILE)\n"
        "for f in here.iterdir():\n"  # nothing cached: what is in memory afterwards was read
        "    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)\n"
        "def resident(name):\n"
        "    kb, current = 0, None\n"
        "    for line in open('/proc/self/smaps'):\n"
        "        field = line.split()\n"
        "        if not field[0].endswith(':'): current = field[5] if len(field) > 5 else ''\n"
        "        elif field[0] == 'Rss:' and current.endswith(name): kb += int(field[1])\n"
        "    return kb\n"
        "texts = [t.encode() for t in json.loads(sys.stdin.read())]\n"
        "found = {}\n"
        "for name, tables in (('bytemove.npy', identifier.tables), ('nextmove.npy', language._tables(identifier))):\n"
        "    found[name] = [language._visits(tables, t) for t in texts]\n"
        "    found[name + ' kB'] = resident(name)\n"
        "same = found['bytemove.npy'] == found['nextmove.npy'] and None not in found['bytemove.npy']\n"
        "print(json.dumps([same, found['bytemove.npy kB'], found['nextmove.npy kB']]))\n")
    # news articles' text as extraction hands it on: nine languages, Latin and Cyrillic
    events = Path(__file__).parent / "fixtures" / "story_events.jsonl"
    texts = [json.loads(line)["text"][:language.SAMPLE_CHARS] for line in events.read_text(encoding="utf-8").splitlines()]
    env = {**os.environ, "MONITOR_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True,
                         env=env, check=True, timeout=300).stdout.strip().splitlines()
    same, by_byte, by_row = json.loads(out[-1])
    assert same
    assert by_row > 1000  # the texts read many pages of py3langid's layout (the test tests something)
    assert by_byte < by_row / 2, (by_byte, by_row)


def test_the_answers_are_py3langids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Language and confidence exactly as py3langid's identifier gives them, also where the walk
    had to fall back (a window too short for the model: its check fails on every longer text)."""
    from py3langid.langid import LanguageIdentifier

    identifier = language._identifier()
    reference = LanguageIdentifier(identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes,
                                   identifier.tk_nextmove, identifier.tk_output, norm_probs=True,
                                   tk_row=identifier.tk_row)
    texts = [*TEXTS, *(page[i:i + language.SAMPLE_CHARS] for page in _pages_text() for i in (0, 5000))]
    for text in texts:
        assert identifier.classify(text) == reference.classify(text), text[:80]
    monkeypatch.setattr(language, "WINDOW", 2)
    assert language._visits(identifier.tables, TEXTS[0].encode()) is None
    for text in texts:
        assert identifier.classify(text) == reference.classify(text), text[:80]


def test_rows_widened_as_numpy_casts_them() -> None:
    """Every float16 value, a row of each sign's normal numbers at a time, and rows holding a
    zero, a subnormal, an infinity, a NaN or both signs (NumPy's own cast): float32 bits equal;
    so each text's scores are py3langid's own, bit for bit."""
    import numpy as np

    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    normal = [every[(every.view(np.uint16) & 0x7C00 != 0) & (every.view(np.uint16) & 0x7C00 != 0x7C00)
                    & (every.view(np.uint16) >> 15 == sign)].reshape(-1, 30) for sign in (0, 1)]
    odd = [np.array([[-1.5, v]], dtype=np.float16) for v in (0.0, -0.0, 1e-7, -np.inf, np.nan, 2.0)]
    for rows in [*normal, *odd, np.zeros((0, 3), dtype=np.float16)]:
        widened = language._widen(rows)
        assert widened.dtype == np.float32 and widened.shape == rows.shape
        assert (widened.view(np.uint32) == rows.astype(np.float32).view(np.uint32)).all()
    assert sum(a.size for a in normal) == 2 * 30 * (1 << 10)
    # and the scores made with them are py3langid's to the bit
    from py3langid.langid import LanguageIdentifier

    identifier = language._identifier()
    for text in [*TEXTS, *(page[:language.SAMPLE_CHARS] for page in _pages_text())]:
        visits = language._visits(identifier.tables, identifier._encode(text))
        ours = identifier._sparse_score(visits, identifier.nb_ptc)
        theirs = LanguageIdentifier._sparse_score(identifier, visits, identifier.nb_ptc)
        assert ours.dtype == theirs.dtype and (ours.view(np.uint32) == theirs.view(np.uint32)).all(), text[:80]
