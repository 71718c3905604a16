"""monitor.collector: the one place that freezes what the process built out of the garbage
collector's reach, and hands it back when a reload replaces it."""

from __future__ import annotations

import gc
import weakref

from monitor import collector


class _Node:
    me: object


def test_a_frozen_cycle_is_kept_until_released_and_the_rest_stays_frozen() -> None:
    node = _Node()
    node.me = node  # a reference cycle: only the collector frees it
    ref = weakref.ref(node)
    try:
        collector.freeze()
        del node
        gc.collect()
        assert ref() is not None  # frozen: out of the collector's reach
        collector.release()
        assert ref() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_building_pauses_the_collector_and_freezes_only_a_large_build() -> None:
    was = gc.isenabled()
    gc.enable()
    try:
        before = gc.get_freeze_count()
        with collector.building(bulk=False):
            assert not gc.isenabled()
            small = [[i] for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() == before
        with collector.building(bulk=True):
            assert not gc.isenabled()
            large = [[i] for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= before + len(large) + len(small)
        gc.disable()  # start-up's pause: a build then leaves the collector off, and nothing frozen
        gc.unfreeze()
        with collector.building(bulk=True):
            pass
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        if was:
            gc.enable()
        else:
            gc.disable()
