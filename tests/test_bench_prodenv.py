"""bench.prodenv: the benches' production-like venv holds what ``pip install monitor`` installs
and nothing of the dev extras (whose trio httpx would import in every measured process)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from bench import prodenv
from bench.loopback import child_env

ROOT = Path(__file__).resolve().parent.parent


def _modules(python: Path, code: str) -> dict[str, object]:
    out = subprocess.run([str(python), "-c", code], env=child_env(ROOT), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_production_venv_runs_the_daemon_without_the_dev_extras(tmp_path: Path) -> None:
    names = {d.metadata["Name"].lower() for d in prodenv.runtime_distributions()}
    assert {"sqlalchemy", "httpx", "trafilatura", "psycopg-binary", "feedparser-sgmllib"} <= names  # an extra, a dependency's dependency
    assert not names & {"pytest", "selenium", "trio", "pygments", "mypy"}

    python = prodenv.build(tmp_path / "venv")
    found = _modules(python, (
        "import importlib.util, json, sys\n"
        "import monitor.daemon, monitor.extract.warm, monitor.cli, monitor.ingest, monitor.web\n"
        "print(json.dumps({'trio': 'trio' in sys.modules, 'monitor': monitor.daemon.__file__,\n"
        "  'dev': [m for m in ('trio', 'pygments', 'pytest', 'selenium') if importlib.util.find_spec(m)]}))"))
    assert found == {"trio": False, "monitor": str(ROOT / "monitor" / "daemon.py"), "dev": []}
    # the dev venv does have them: the test would see them leak through
    assert metadata.distribution("trio") and metadata.distribution("pygments")
    # the console script a user runs, on that interpreter
    help_text = subprocess.run([str(python.parent / "monitor"), "--help"], env=child_env(ROOT), cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "check-config" in help_text.stdout, help_text.stderr
    # bench.ingest's measured baseline (``python -m bench.ingest --plain``) imports bench.ingest
    # there: none of what only the bench's own steps use (building this venv, reading the
    # database, the medians) is its cost
    extra = _modules(python, "import json, sys\nimport bench.ingest\n"
                             "print(json.dumps({'loaded': [m for m in ('importlib.metadata', 'venv', 'sysconfig', "
                             "'packaging', 'sqlite3', 'statistics') if m in sys.modules]}))")
    assert extra == {"loaded": []}



def test_httpcore_finds_sniffio_in_the_production_venv(tmp_path: Path) -> None:
    """httpcore imports sniffio each time it sets up a lock or an event (a few every request);
    httpx 0.28 no longer brings it, and where it is missing each of those imports fails only
    after looking through every directory of sys.path (~35 us, on every page fetched)."""
    python = prodenv.build(tmp_path / "venv")
    found = _modules(python, (
        "import asyncio, json, sys\n"
        "from httpcore._synchronization import AsyncLock\n"
        "async def setup():\n"
        "    lock = AsyncLock()\n"
        "    async with lock:\n"
        "        return lock._backend\n"
        "backend = asyncio.run(setup())\n"
        "print(json.dumps({'backend': backend, 'sniffio': 'sniffio' in sys.modules}))"))
    assert found == {"backend": "asyncio", "sniffio": True}

def _purelib_seen_as(monkeypatch: pytest.MonkeyPatch, seen: Path) -> None:
    """Make this venv's site-packages read as ``seen`` (the new venv's own paths unchanged)."""
    real = sysconfig.get_paths

    def get_paths(*args: Any, **kwargs: Any) -> dict[str, str]:
        paths = real(*args, **kwargs)
        return {**paths, "purelib": str(seen)} if not args and not kwargs else paths
    monkeypatch.setattr(sysconfig, "get_paths", get_paths)


def test_a_symlink_on_the_venv_path_still_fills_the_production_venv(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "link"
    link.symlink_to(Path(sysconfig.get_paths()["purelib"]).resolve(), target_is_directory=True)
    _purelib_seen_as(monkeypatch, link)
    python = prodenv.build(tmp_path / "venv")
    found = _modules(python, "import json, httpx, sqlalchemy; print(json.dumps({'ok': True}))")
    assert found == {"ok": True}


def test_a_production_venv_without_the_dependencies_is_refused(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _purelib_seen_as(monkeypatch, elsewhere)
    with pytest.raises(RuntimeError, match=r"no file of .*httpx.* found under .*elsewhere"):
        prodenv.build(tmp_path / "venv")
    assert not (tmp_path / "venv" / "complete").exists()  # the next run tries again
