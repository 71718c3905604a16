"""Deployment files: the systemd unit verifies, the image runs as non-root with exec-form
signals and a health check, compose wires the daemon to PostgreSQL with the example config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT, run_monitor

DEPLOY = ROOT / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "monitor.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "NotifyAccess=main" in unit
    # verify checks that ExecStart exists: point it at this environment's monitor executable.
    exe = Path(sys.executable).parent / "monitor"
    assert exe.exists()
    (tmp_path / "monitor.service").write_text(unit.replace("/usr/local/bin/monitor", str(exe)))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "monitor.service")],
                         capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if "monitor.service" in ln]
    assert res.returncode == 0, res.stdout + res.stderr
    assert not problems, problems  # e.g. "Unknown key ... ignoring" still exits 0


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = dockerfile.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_nonroot_exec_form_with_healthcheck() -> None:
    ins = _instructions((DEPLOY / "Dockerfile").read_text())
    assert sum(1 for w, _ in ins if w == "FROM") >= 2
    assert any(w == "COPY" and r.startswith("--from=build") for w, r in ins)
    users = [r for w, r in ins if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = [r for w, r in ins if w == "ENTRYPOINT"][-1]
    assert json.loads(entry) == ["monitor"]  # exec form: SIGTERM reaches monitor, not a shell
    health = [r for w, r in ins if w == "HEALTHCHECK"][-1]
    assert json.loads(health[health.index("CMD") + 3:].strip()) == ["monitor", "health"]
    # Everything the image copies exists in the repository.
    for w, r in ins:
        if w == "COPY" and not r.startswith("--from"):
            for src in r.split()[:-1]:
                assert (ROOT / src).exists(), src


def test_compose_runs_the_daemon_with_postgresql_and_the_example_config(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    db, mon = compose["services"]["db"], compose["services"]["monitor"]
    assert db["image"].startswith("postgres")
    assert mon["depends_on"]["db"]["condition"] == "service_healthy"
    url = mon["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db/" in url
    assert any(v.startswith("./config.example.toml:/etc/monitor/config.toml") for v in mon["volumes"])
    # The example config is valid once its environment is there, and has health checks on.
    cfg = tmp_path / "config.toml"
    shutil.copy(DEPLOY / "config.example.toml", cfg)
    res = run_monitor(cfg, "check-config", env={"DATABASE_URL": url, "WEBHOOK_URL": "https://hooks.example.org/x"})
    assert res.returncode == 0, res.stderr
    assert 'listen = "0.0.0.0:8080"' in cfg.read_text()
