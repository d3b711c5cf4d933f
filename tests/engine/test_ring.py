"""The audio ring hands whole blocks from the callback to the writer, in order, and
refuses (and counts) a block that does not fit instead of overwriting unread audio."""

import numpy as np

from engine.ring import AudioRing


def block(start, n):
    x = np.arange(start, start + n, dtype=np.float32)
    return np.stack([x, -x], axis=1)


def test_blocks_come_out_in_order_across_the_wrap():
    ring = AudioRing(1000)
    out = np.zeros((700, 2), np.float32)
    got = []
    t = 0
    for _ in range(10):
        assert ring.write(block(t, 300), time=t)
        t += 300
        n = ring.read_into(out)
        got.append(out[:n].copy())
    allf = np.concatenate(got)
    np.testing.assert_array_equal(allf, block(0, 3000))
    assert ring.first_time == 0 and ring.overflows == 0


def test_full_ring_refuses_whole_blocks_and_counts_them():
    ring = AudioRing(1000)
    assert ring.write(block(0, 600))
    assert not ring.write(block(600, 600))
    assert ring.overflows == 1 and ring.dropped_frames == 600
    out = np.zeros((1000, 2), np.float32)
    assert ring.read_into(out) == 600
    np.testing.assert_array_equal(out[:600], block(0, 600))
    assert ring.read_into(out) == 0
