import gc

from chargeledger.runtime import GC_THRESHOLDS, tune_gc_for_streaming


def test_tune_gc_for_streaming_sets_the_thresholds_and_freezes_the_heap_so_far():
    before = gc.get_threshold()
    try:
        tune_gc_for_streaming()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
