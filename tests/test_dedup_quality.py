"""The quality bar on a small set: syndicated variants and hard negatives through the real pipeline.

``python -m bench.dedup_quality`` runs the same on all sixty pages of ../shared.
"""

from __future__ import annotations

from pathlib import Path

from bench.dedup_quality import run
from bench.syndicate import build, load_ground_truth

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dedup"


def test_syndicated_copies_cluster_and_hard_negatives_stay_apart(tmp_path: Path) -> None:
    pages = load_ground_truth(FIXTURE)
    assert len(pages) == 11
    corpus = build(pages, variants=3, seed=11)
    res = run(corpus, f"sqlite:///{tmp_path / 'q.db'}", tmp_path, seed=11)
    assert res.articles == len(corpus.items) and not res.lost
    # pairs: variants and original of each story; negatives: other stories on the same topic,
    # other articles of the same outlet with its byline and footer, and the generator's topical texts
    assert res.stories.precision >= 0.98, res.stories.false_merges
    assert res.stories.recall >= 0.95, res.stories.misses
    assert res.exact.recall < 0.5  # the exact hash alone misses the copies: the test can fail
