"""The stream pattern: exact build/revert round trip, and online causality by construction."""

import numpy as np
import pytest

from models.pattern import MIN_LOOKAHEAD, Pattern
from models.tokens import CHORD, MELODY, NUM_STREAMS, PAD

PATTERNS = [
    Pattern("parallel"),
    Pattern("parallel", lookahead=2),
    Pattern("delay", delays=(0, 0, 1, 1, 1)),
    Pattern("delay", delays=(0, 0, 1, 2, 3)),
    Pattern("delay", delays=(0, 3, 2, 1, 0), lookahead=3),
    Pattern("flattened"),
    Pattern("flattened", order=(0, 1, 2, 3, 4)),
    Pattern("flattened", order=(2, 0, 4, 1, 3), lookahead=2),
    # offline (render, play-along of a file): the band hears future melody
    Pattern("delay", delays=(0, 0, 1, 1, 1), lookahead=-4),
    Pattern("parallel", lookahead=0),
    Pattern("flattened", lookahead=-2),
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.kind}-{p.offsets}-{p.slots}")
@pytest.mark.parametrize("T", [1, 7, 33])
def test_build_then_revert_is_exact(pattern, T):
    grid = np.random.default_rng(T).integers(1, 100, size=(T, NUM_STREAMS))
    seq = pattern.build(grid)
    assert seq.shape == (pattern.num_positions(T), NUM_STREAMS)
    np.testing.assert_array_equal(pattern.revert(seq, T), grid)
    # every grid cell appears exactly once; every other slot is PAD
    assert (seq != PAD).sum() == grid.size


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.kind}-{p.offsets}-{p.slots}")
def test_revert_keeps_trailing_dimensions(pattern):
    T = 5
    grid = np.random.default_rng(0).normal(size=(T, NUM_STREAMS, 3))
    np.testing.assert_array_equal(pattern.revert(pattern.build(grid, fill=np.nan), T), grid)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.kind}-{p.offsets}-{p.slots}")
def test_accompaniment_never_sees_melody_after_t_minus_lookahead(pattern):
    """Brute force over positions: everything before the position of accompaniment cell
    (t, s) holds melody of time <= t - d only; and the reported lag is the real one."""
    T, d = 12, pattern.lookahead
    lags = pattern.melody_lag()
    for t in range(T):
        for s in range(NUM_STREAMS):
            if s == MELODY:
                continue
            q = pattern.position(t, s)
            visible = [m for m in range(T + 5) if pattern.position(m, MELODY) < q]
            latest = max(visible, default=-(10**9))
            assert latest <= t - d
            if latest >= 0:
                assert t - latest == lags[s]


def test_cells_at_inverts_position():
    for pattern in PATTERNS:
        for t in range(6):
            for s in range(NUM_STREAMS):
                assert (s, t) in pattern.cells_at(pattern.position(t, s))


def test_model_rows_shift_by_one_with_bos():
    p = Pattern("parallel")
    grid = np.arange(15).reshape(3, 5) + 3
    inputs, targets = p.model_rows(grid)
    assert (inputs[0] == PAD).all()
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    np.testing.assert_array_equal(targets, grid)


def test_measured_properties_of_the_three_kinds():
    assert Pattern("parallel").melody_lag() == {1: 1, 2: 1, 3: 1, 4: 1}
    assert Pattern("delay", delays=(0, 0, 1, 1, 1)).melody_lag() == {1: 2, 2: 1, 3: 1, 4: 1}
    assert Pattern("flattened").calls_per_frame() == NUM_STREAMS
    assert Pattern("delay").calls_per_frame() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "zigzag"},
        {"lookahead": MIN_LOOKAHEAD - 1},
        {"kind": "delay", "delays": (0, -1, 0, 0, 0)},
        {"kind": "flattened", "order": (0, 0, 1, 2, 3)},
    ],
)
def test_bad_pattern_is_refused(kwargs):
    with pytest.raises(ValueError):
        Pattern(**kwargs)


def test_round_trip_through_dict():
    for p in PATTERNS:
        assert Pattern.from_dict(p.to_dict()) == p


def test_an_offline_pattern_sees_the_future_melody_and_keeps_the_online_metric_frames():
    online, offline = Pattern("delay"), Pattern("delay", lookahead=-4)
    assert online.online and not offline.online and online.shift == 0
    assert offline.melody_lag() == {1: -3, 2: -4, 3: -4, 4: -4}  # chord hears t + 3, voices t + 4
    assert min(offline.offsets) == 0  # nothing before position 0
    for t in range(6):
        # the position that predicts the chord of t carries t's metric position, as online
        assert offline.frame_of_position(offline.position(t, CHORD)) == t
        assert online.frame_of_position(online.position(t, CHORD)) == t
