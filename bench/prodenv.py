"""A production-like interpreter for the benches: a venv holding monitor's runtime dependencies
only, as ``pip install monitor`` makes it, without the ``[dev]`` extras.

Why: the dev venv the benches run from has packages a production install lacks, and some of
them change what the daemon does at start-up. httpcore imports trio whenever it is installed
(selenium brings it: ~60 ms and ~10 MB in every process that imports httpx), httpx's command-line
module imports pygments (pytest brings it). Measured there, the daemon's first poll and memory
include costs no user pays.

Made offline from what the running venv has installed, in about a second: each file of each
distribution that ``monitor`` requires (recursively, markers and extras evaluated, no ``dev``
extra) is hard-linked (symlinked across filesystems) into a fresh venv's site-packages, their
compiled bytecode included. ``monitor`` itself is not installed there: the benches put the
checkout they measure first on ``PYTHONPATH`` (``bench.loopback.child_env``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib import metadata

# importlib.metadata, venv, sysconfig and packaging are imported inside the functions, not here:
# bench.ingest's measured plain-script baseline (``python -m bench.ingest --plain``) imports this
# module, and would otherwise pay ~15 ms and their memory that the script it stands for does not.

SCRIPT = """#!{python}
import sys
from monitor.__main__ import main
if __name__ == "__main__":
    sys.exit(main())
"""


def _name(dist: metadata.Distribution) -> str:
    return re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()


def runtime_distributions(top: str = "monitor") -> list[metadata.Distribution]:
    """``top``'s installed requirements and theirs, recursively (no extras of ``top``; the
    extras its requirements name, like ``psycopg[binary]``, followed)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(top, frozenset())]
    while todo:
        name, extras = todo.pop()
        dist = metadata.distribution(name)
        if (_name(dist), extras) in seen:
            continue
        seen.add((_name(dist), extras))
        if name != top:
            found[_name(dist)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((req.name, frozenset(req.extras)))
    return list(found.values())


def build(target: Path) -> Path:
    """The production-like venv in ``target`` (made if missing); returns its python."""
    import sysconfig
    import venv

    python = target / "bin" / "python"
    marker = target / "complete"
    if marker.exists():
        return python
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(target)
    # resolved like each file below: a symlink on the venv's path would otherwise make every file
    # look outside site-packages, leaving the new venv silently empty
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    dest = Path(sysconfig.get_paths(vars={"base": str(target), "platbase": str(target)})["purelib"])
    empty: list[str] = []
    for dist in runtime_distributions():
        linked = 0
        for f in dist.files or []:
            src = Path(str(dist.locate_file(f))).resolve()
            try:
                rel = src.relative_to(purelib)
            except ValueError:
                continue  # a script in bin/, a data file outside site-packages
            linked += 1
            out = dest / rel
            if out.exists() or not src.is_file():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, out)
            except OSError:
                out.symlink_to(src)
        if not linked:
            empty.append(_name(dist))
    if empty:  # the benches would measure a daemon failing to import, or another interpreter's
        raise RuntimeError(f"bench.prodenv: no file of {', '.join(sorted(empty))} found under {purelib} "
                           f"(where this venv installs packages); {target} is incomplete")
    script = target / "bin" / "monitor"
    script.write_text(SCRIPT.format(python=python), encoding="utf-8")
    script.chmod(0o755)
    marker.touch()
    return python


def main() -> None:
    """``python -m bench.prodenv DIR``: make it, print its python (to try things by hand)."""
    print(build(Path(sys.argv[1]).resolve()))


if __name__ == "__main__":
    main()
