"""bench.prodenv: the benches' production-like venv holds what ``pip install monitor`` installs
and nothing of the dev extras (whose trio httpx would import in every measured process)."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

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
