"""Check: another checkout's extractor gives the same fields on every page the benches use.

    python -m bench.extract_same --compare /tmp/before [--timezone Europe/Berlin]

A speed-up of ``monitor.extract`` must not change what it extracts. The pages: bench.ingest's
(the real pages of ../shared/data/articles and their syndicated copies in ten outlets' templates),
bench.syndicate's as bench.dedup_quality builds them (six outlets), the real pages again at their
own URLs (as bench.extract reads them) and the test fixtures' pages. Each checkout's
``extract_article`` runs in its own process over all of them; every field of every page is
compared. Prints the number of pages, the differences, and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pages() -> list[tuple[str, str, bytes]]:
    """(name, url, html) of every page, in a stable order."""
    from bench.extract import default_data, load_pages
    from bench.ingest import corpus_pages
    from bench.syndicate import articles_dir, build, load_ground_truth, page_html

    out = [(f"ingest{p}", f"http://outlet.example{p}", html) for p, (_, html) in sorted(corpus_pages(3).items())]
    directory = articles_dir()
    assert directory is not None
    corpus = build(load_ground_truth(directory))
    outlets = {o.name: o for o in corpus.outlets}
    for it in corpus.items:
        body = it.raw_html if it.raw_html is not None else page_html(it, outlets.get(it.outlet) or corpus.outlets[0])
        out.append((f"syndicate/{it.key}", f"http://{it.outlet.replace(' ', '-')}.example/{it.key}", body))
    for data in (default_data(), ROOT / "tests" / "fixtures" / "articles"):
        for pid, (html, url, _) in load_pages(data).items():
            out.append((f"{data.name}/{pid[:16]}", url, html.encode()))
    return out


def _dump(src: Path, dst: Path, timezone: str | None) -> None:
    import monitor
    from monitor.extract import extract_article

    print(f"extracting with {Path(monitor.__file__).parent}", file=sys.stderr)
    found = []
    for _, url, html in pickle.loads(src.read_bytes()):
        ex = extract_article(html, url, "text/html; charset=utf-8", timezone=timezone)
        found.append(None if ex is None else dataclasses.asdict(ex))
    dst.write_bytes(pickle.dumps(found))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", type=Path, required=True, metavar="DIR", help="the other checkout")
    ap.add_argument("--timezone", help="the source's timezone handed to the extractor")
    ap.add_argument("--dump", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dump:
        _dump(args.dump[0], args.dump[1], args.timezone)
        return
    all_pages = pages()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "pages.pickle"
        src.write_bytes(pickle.dumps(all_pages))
        for name, root in (("this", ROOT), ("compare", args.compare.resolve())):
            dst = Path(tmp) / f"{name}.pickle"
            path = os.pathsep.join(filter(None, [str(root), str(ROOT), os.environ.get("PYTHONPATH")]))
            cmd = [sys.executable, "-m", "bench.extract_same", "--compare", str(root), "--dump", str(src), str(dst)]
            if args.timezone:
                cmd += ["--timezone", args.timezone]
            subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": path}, cwd=tmp)
            results[name] = pickle.loads(dst.read_bytes())
    diffs = 0
    for (page, _, _), a, b in zip(all_pages, results["this"], results["compare"], strict=True):
        if a == b:
            continue
        diffs += 1
        if a is None or b is None:
            print(f"{page}: this {'None' if a is None else 'extracted'}, compare {'None' if b is None else 'extracted'}")
            continue
        for key in a:
            if a[key] != b[key]:
                print(f"{page}: {key}: this {str(a[key])[:100]!r} / compare {str(b[key])[:100]!r}")
    extracted = sum(r is not None for r in results["this"])
    print(f"{len(all_pages)} pages ({extracted} extracted), {diffs} with a different field "
          f"(this {ROOT}, compare {args.compare})")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
