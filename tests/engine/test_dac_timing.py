"""engine.dac_timing as a specification: the DAC line and the player latency of an output
stream, from per-block timing rows and the time, with no stream and no clock.

The rows are what a steady stream's callbacks would write: block k starts at clock
k * BLOCK, its callback runs at base + k * BLOCK / SR, its first frame reaches the DAC
10.67 ms later (so its lead, to its next frame, is 10.67 ms + one block)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import dac_timing as dt
from engine.dac_timing import ARRIVAL_MARGIN_S, TIMING_RING, LatencyEstimator, Rows, TimingRing, dac_line

SR = 48000
BLOCK = 256
DAC_S = 0.01067
NOW = 1000.0  # the tests' clock: any monotonic time will do
STEADY_LAT = DAC_S + BLOCK / SR + ARRIVAL_MARGIN_S


def steady(n: int, *, end: float = NOW, late_dac=None, early=None, xrun_at=(), conv_err=None) -> Rows:
    """n blocks of a steady stream whose last callback ran just before ``end``.
    ``late_dac`` maps block -> seconds PortAudio's DAC time for it is late (scatter, or a
    step of the line); ``early`` maps block -> seconds its callback came early (a refill
    burst: its lead really is longer); ``conv_err`` maps block -> seconds its DAC time is
    off on the monotonic clock alone (its lead is right: the conversion had not settled)."""
    late_dac, early, conv_err = late_dac or {}, early or {}, conv_err or {}
    base = end - n * BLOCK / SR
    k = np.arange(n)
    dac = base + k * BLOCK / SR + DAC_S + np.array([late_dac.get(i, 0.0) for i in k])
    t = base + k * BLOCK / SR - np.array([early.get(i, 0.0) for i in k])
    return Rows(
        clock=k.astype(np.int64) * BLOCK,
        time=t,
        dac=dac + np.array([conv_err.get(i, 0.0) for i in k]),
        lead=dac - t + BLOCK / SR,
        entry=np.zeros(n),
        xrun=np.isin(k, list(xrun_at)),
    )


def line_of(rows: Rows) -> float:
    """Where a steady stream's line is: its block 0's DAC time."""
    return float(rows.time[0] + DAC_S)


# -- the DAC line ---------------------------------------------------------------


def test_the_line_is_a_median_so_one_scattered_block_does_not_move_it():
    rows = steady(600, late_dac={599: 0.005})
    assert abs(dac_line(rows, SR) - line_of(rows)) < 1e-9
    # (the last block's own DAC time would have moved every stamp by its 5 ms)
    assert abs(rows.offsets(SR)[-1] - line_of(rows) - 0.005) < 1e-9


def test_a_step_of_the_line_in_its_last_blocks_is_followed_at_once():
    rows = steady(600, late_dac={k: 0.0037 for k in range(600 - dt.LINE_RECENT, 600)})
    assert abs(dac_line(rows, SR) - (line_of(rows) + 0.0037)) < 1e-9
    # in under half of those blocks it is a scattered few: ignored
    rows = steady(600, late_dac={k: 0.0037 for k in range(600 - dt.LINE_RECENT // 2 + 1, 600)})
    assert abs(dac_line(rows, SR) - line_of(rows)) < 1e-9


def test_blocks_before_the_latest_xrun_leave_the_line_once_enough_came_after_it():
    # the line moved 0.8 ms (under LINE_JUMP_S / 2) at an xrun 20 blocks ago: 44 blocks
    # of the window on the old line, 20 on the new
    late = {k: 0.0008 for k in range(580, 600)}
    rows = steady(600, late_dac=late, xrun_at=(579,))
    assert abs(dac_line(rows, SR) - (line_of(rows) + 0.0008)) < 1e-9
    # without the xrun flagged, the median of the window stays on the old line
    rows = steady(600, late_dac=late)
    assert abs(dac_line(rows, SR) - line_of(rows)) < 1e-9


# -- the player latency -----------------------------------------------------------


def test_a_steady_stream_gets_the_lead_quantile_plus_the_margin():
    est = LatencyEstimator(opened_at=0.0)
    assert abs(est.update(steady(600), SR, NOW) - STEADY_LAT) < 1e-6
    assert est.value == est.update(steady(600), SR, NOW) and est.checked_at == NOW


def test_the_blocks_around_an_xrun_do_not_raise_the_latency_and_without_one_they_do():
    burst = {k: 0.005 for k in range(300, 312)}  # 2 % of the blocks: moves a p99
    guarded = LatencyEstimator(opened_at=0.0)
    lat = guarded.update(steady(600, late_dac={599: 0.005}, early=burst, xrun_at=(305,)), SR, NOW)
    assert abs(lat - STEADY_LAT) < 1e-4, lat
    assert guarded.left_out > 0 and len(guarded.disruptions) == 1
    raised = LatencyEstimator(opened_at=0.0).update(steady(600, early=burst), SR, NOW)
    assert raised > lat + 0.004


def test_the_latency_goes_up_at_once_and_down_only_after_the_lower_value_held():
    est = LatencyEstimator(opened_at=0.0)
    burst = {k: 0.005 for k in range(300, 312)}
    raised = est.update(steady(600, early=burst), SR, NOW)
    later = NOW + 1.1  # the burst has left the ring
    calm = steady(TIMING_RING, end=later)
    assert est.update(calm, SR, later) == raised  # lower, not for long yet
    assert est.update(calm, SR, later + dt.LATENCY_LOWER_AFTER_S - 0.1) == raised
    assert abs(est.update(calm, SR, later + dt.LATENCY_LOWER_AFTER_S + 0.01) - STEADY_LAT) < 1e-4
    # a bit lower (within LATENCY_LOWER_BY_S) is no reason to move at all
    est2 = LatencyEstimator(opened_at=0.0)
    lat = est2.update(steady(600, early={k: 0.0002 for k in range(300, 312)}), SR, NOW)
    assert est2.update(calm, SR, later + 60.0) == lat


def test_a_young_stream_comes_down_sooner():
    opened = NOW - 5.0  # settled (over 3 s old), still young (under 20 s)
    est = LatencyEstimator(opened_at=opened)
    burst = {k: 0.005 for k in range(500, 512)}  # after its first LATENCY_SETTLE_S
    raised = est.update(steady(600, early=burst), SR, NOW)
    assert raised > STEADY_LAT + 0.004
    calm = steady(TIMING_RING, end=NOW + 1.1)
    assert est.update(calm, SR, NOW + 1.1) == raised
    down = est.update(calm, SR, NOW + 1.1 + dt.LATENCY_LOWER_YOUNG_S + 0.01)
    assert abs(down - STEADY_LAT) < 1e-4


def test_an_xrun_that_left_the_ring_still_guards_the_leads_after_it():
    """The ring holds 5.5 s of 256-frame blocks; a stream re-buffers for 5-10 s after an
    xrun with longer leads. The xrun is remembered once seen."""
    est = LatencyEstimator(opened_at=0.0)
    lat = est.update(steady(600, xrun_at=(598,)), SR, NOW)
    longer = {k: 0.003 for k in range(0, TIMING_RING, 20)}  # 3 ms longer in 5 % of the blocks
    after = steady(TIMING_RING, early=longer, end=NOW + 5.5)  # a whole ring later
    assert not after.xrun.any()
    assert est.update(after, SR, NOW + 5.5) == lat
    assert LatencyEstimator(opened_at=0.0).update(after, SR, NOW + 5.5) > lat + 0.0025


def test_a_small_step_of_the_line_guards_like_an_xrun_and_its_drift_does_not():
    """A step beyond the line's steady drift (the sink's clock runs ~500 ppm off ours) is
    a disruption; the drift is not one."""
    drift = {k: -0.0005 * k * BLOCK / SR for k in range(TIMING_RING)}  # 500 ppm
    est = LatencyEstimator(opened_at=0.0)
    lat = est.update(steady(TIMING_RING, late_dac=drift), SR, NOW)
    assert est.disruptions == ()
    # the line steps 0.8 ms later at block 900 (half a chunk's drift would be 0.09 ms)
    stepped = {k: v + (0.0008 if k >= 900 else 0.0) for k, v in drift.items()}
    assert est.update(steady(TIMING_RING, late_dac=stepped), SR, NOW) == lat
    assert len(est.disruptions) >= 1


def test_a_new_streams_first_blocks_off_its_line_do_not_set_the_latency():
    """A new PulseAudio stream's first blocks report DAC times ~220 ms off the line it then
    plays on, with an underflow among them: while the stream settles, the latency comes
    from its blocks on the line only."""
    est = LatencyEstimator(opened_at=NOW - 0.5)
    lat = est.update(steady(90, conv_err={0: -0.227, 1: -0.211}, xrun_at=(1,)), SR, NOW)
    assert lat is not None and abs(lat - STEADY_LAT) < 1e-4, lat


def test_dac_times_that_mean_nothing_give_no_latency():
    rows = steady(600)
    zero = Rows(rows.clock, rows.time, np.zeros(600), np.zeros(600), rows.entry, rows.xrun)
    assert LatencyEstimator(opened_at=0.0).update(zero, SR, NOW) is None


def test_reset_forgets_the_old_stream():
    est = LatencyEstimator(opened_at=0.0)
    est.update(steady(600, xrun_at=(500,)), SR, NOW)
    est.reset(opened_at=NOW)
    assert (est.value, est.disruptions, est.checked_at, est.opened_at) == (None, (), 0.0, NOW)


# -- the ring the callback writes ---------------------------------------------------


def test_the_ring_keeps_the_last_blocks_in_order_and_finds_a_samples_block():
    count = np.zeros(3, dtype=np.int64)
    ring = TimingRing(count, 1)
    assert ring.n == 0 and len(ring.rows(0, 0)) == 0 and ring.block_at(0) is None
    total = TIMING_RING + 100
    for k in range(total):
        ring.push(k * BLOCK, NOW + k * BLOCK / SR, NOW + k * BLOCK / SR + DAC_S, 0.016, 0.0, k == total - 1)
    assert ring.n == total == int(count[1])
    rows = ring.rows(0, total)
    assert len(rows) == TIMING_RING and rows.clock[0] == 100 * BLOCK and rows.clock[-1] == (total - 1) * BLOCK
    assert rows.xrun[-1] and not rows.xrun[:-1].any()
    assert list(ring.rows(total - 3, total).clock) == [k * BLOCK for k in range(total - 3, total)]
    k = total - 7
    assert ring.block_at(k * BLOCK + 5) == (k * BLOCK, NOW + k * BLOCK / SR, NOW + k * BLOCK / SR + DAC_S)
    assert ring.block_at(50 * BLOCK) is None  # left the ring
    assert ring.first_block_after(NOW + (k - 0.5) * BLOCK / SR)[0] == k * BLOCK
    assert ring.first_block_after(NOW + total * BLOCK / SR) is None


@pytest.mark.parametrize("n", [dt.ARRIVAL_WARMUP, 200, TIMING_RING])
def test_the_line_and_the_latency_agree_on_a_steady_stream_of_any_length(n):
    rows = steady(n)
    assert abs(dac_line(rows, SR) - line_of(rows)) < 1e-9
    assert abs(LatencyEstimator(opened_at=0.0).update(rows, SR, NOW) - STEADY_LAT) < 1e-6
