import gc
import logging

from chargeledger.runtime import GC_THRESHOLDS, RepeatedLogFilter, tune_gc_for_streaming


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


def _record(name: str, msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_repeated_aiokafka_message_passes_once_per_interval_and_reports_what_it_held_back():
    now = [100.0]
    f = RepeatedLogFilter(interval=10.0, clock=lambda: now[0])
    first = _record("aiokafka.conn", "Unable connect to %r: %s", "node 1", "refused")
    assert f.filter(first)
    for _ in range(37):
        now[0] += 0.1
        assert not f.filter(_record("aiokafka.conn", "Unable connect to %r: %s", "node 1", "refused"))
    now[0] = 110.5  # 10.5 s after the first one passed
    later = _record("aiokafka.conn", "Unable connect to %r: %s", "node 1", "refused")
    assert f.filter(later)
    assert later.getMessage() == (
        "Unable connect to 'node 1': refused [37 similar messages suppressed in the last 10 s]")


def test_other_messages_and_other_loggers_are_not_limited():
    f = RepeatedLogFilter(interval=10.0, clock=lambda: 0.0)
    assert f.filter(_record("aiokafka.conn", "one"))
    assert f.filter(_record("aiokafka.conn", "another"))  # another format string
    assert f.filter(_record("aiokafka.cluster", "one"))  # another logger
    for _ in range(3):
        assert f.filter(_record("chargeledger.worker", "one"))  # not aiokafka: never limited
