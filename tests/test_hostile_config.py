"""Configs that used to pass ``check-config`` and then crash, or that exhausted it: queries nested
hundreds deep, non-finite or absurd intervals, templates that build gigabytes or loop for
minutes. Each is now a problem with its line, found in seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitor.alerts.render import Templates
from monitor.alerts.sandbox import MAX_OUTPUT
from tests.harness import block, run_monitor, source, webhook_channel, write_config

HOSTILE_QUERIES = {
    "parens": "(" * 300 + "a" + ")" * 300,
    "nots": "NOT " * 1000 + "a",
    "near": " NEAR/3 ".join(["w"] * 1000),
    "long": "word " * 5000,
}


def _children_cpu() -> float:
    """CPU seconds (user and system) of this process's children that have been waited for."""
    t = os.times()
    return t.children_user + t.children_system


def test_hostile_configs_are_problems_with_their_lines(tmp_path: Path) -> None:
    rules = "".join(block("rule", name=name, query=q, channels=["hook"]) for name, q in HOSTILE_QUERIES.items())
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("inf", "http://example.org/a", interval="5m").replace('"5m"', "inf"),
                       source("nan", "http://example.org/b", interval="5m").replace('"5m"', "nan"),
                       source("huge", "http://example.org/c", interval="4000000d"),
                       rules, webhook_channel("hook", "http://example.org/hook", text="{{ 'x' * 2000000000 }}",
                                              html="{% for i in range(10**8) %}x{% endfor %}"))
    for args in (("check-config",), ("run", "--once")):
        # Judged on the command's CPU seconds (a child's, once it is reaped), not the wall clock:
        # a loaded machine stretches the CLI's start-up alone past 10 s, while the templates
        # unbounded would compute for minutes and the 2 GB string would take its CPU to build.
        t0 = _children_cpu()
        r = run_monitor(cfg, *args, timeout=120)
        assert _children_cpu() - t0 < 20
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        out = r.stderr
        for name in ("inf", "nan", "huge"):
            assert f"source '{name}': interval: duration must be" in out, out
        for name in ("parens", "nots", "near"):
            assert f"rule '{name}': invalid query: query nested too deep" in out, out
        assert "rule 'long': invalid query: query too long" in out
        assert f"template 'text': SecurityError: a template value longer than {MAX_OUTPUT}" in out
        assert "template 'html': SecurityError: OverflowError: Range too big" in out


@pytest.mark.parametrize("template, problem", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "took longer than"),
    ("{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}", "output longer than"),
    ("{{ 2 ** 100000000 }}", "exponent larger than 64"),
])
def test_templates_are_bounded_in_time_and_size(template: str, problem: str) -> None:
    # CPU seconds of this process: the sandbox's own budget is 2 s of the wall clock (checked in
    # the loop), and at load 14 the loop stopped at 2.67 s having used 0.19 s of CPU, so the wall
    # clock past it measures the machine, not the template (a 5 s wall bound left 2.3 s of room).
    t0 = time.process_time()
    [found] = Templates.problems({"text": template})
    assert problem in found and time.process_time() - t0 < 5, found
    assert Templates.problems({"text": "Rule {{ rule }}: {{ title }} {{ url }}"}) == []


def test_every_fetch_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    """Issue 17 saw only the first ``[fetch]`` problem; a user fixing a config one run at a time
    needs every one, each at its own line."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "sqlite:///{tmp_path / "m.db"}"\ncontact = "ops@example.org"\n\n'
                   '[fetch]\ntimeout = "abc"\nconcurrency = -5\nper_host = "x"\nmax_bytes = -1\n'
                   'timout = 3\nrobots = "maybe"\n\n[[source]]\nname = "s"\nurl = "https://example.org/feed"\n',
                   encoding="utf-8")
    done = run_monitor(cfg, "check-config")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert f"{cfg}:6: [fetch]: not a duration: 'abc' (write e.g. \"90s\", \"5m\", \"1h\")" in lines
    assert f"{cfg}:7: [fetch]: concurrency must be a positive whole number, got -5" in lines
    assert f"{cfg}:8: [fetch]: per_host must be a positive whole number, got 'x'" in lines
    assert f"{cfg}:9: [fetch]: max_bytes must be a positive whole number, got -1" in lines
    assert f"{cfg}:10: [fetch]: unknown key 'timout' (did you mean 'timeout'?)" in lines
    assert f"{cfg}:11: [fetch]: robots must be true or false, got 'maybe'" in lines
    assert lines[-1] == f"6 problems in {cfg}"
