"""The clock: exact integer step times, tempo changes at the next beat, count-in, follower."""

import pytest

from engine.clock import Clock, TempoFollower, check_tempo


def test_step_times_are_exact_integers_on_the_grid():
    c = Clock(48000, 120, "4/4")
    # 120 BPM: a quarter is 24000 samples, a 16th 6000
    assert [c.step_time(k) for k in range(5)] == [0, 6000, 12000, 18000, 24000]
    assert c.step_at(5999) == 0 and c.step_at(6000) == 1
    assert c.beat_to_sample(2.5) == 60000
    assert c.sample_to_beats(60000) == pytest.approx(2.5)


def test_fractional_step_lengths_round_without_drift():
    c = Clock(44100, 97, "3/4")
    sps = 44100 * 60 / 97 / 4
    for k in (1, 7, 1000, 28_800):
        assert abs(c.step_time(k) - k * sps) <= 0.5
    times = [c.step_time(k) for k in range(2000)]
    assert all(b > a for a, b in zip(times, times[1:]))
    for k in range(0, 2000, 37):
        assert c.step_at(c.step_time(k)) == k and c.step_at(c.step_time(k) - 1) == k - 1


def test_tempo_change_takes_effect_at_the_next_beat_without_moving_committed_steps():
    c = Clock(48000, 120, "4/4")
    before = [c.step_time(k) for k in range(7)]
    at = c.set_tempo(60, from_step=5)  # step 5 is mid-beat: the change waits for step 8
    assert at == 8
    assert [c.step_time(k) for k in range(7)] == before
    assert c.step_time(8) == 8 * 6000  # the join is where the old tempo put it
    assert c.step_time(9) - c.step_time(8) == 12000  # 60 BPM from there on
    assert c.tempo_at_step(7) == 120 and c.tempo_at_step(8) == 60
    times = [c.step_time(k) for k in range(40)]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert c.step_at(c.step_time(20) + 5) == 20


def test_tempo_change_on_a_beat_boundary_and_in_six_eight():
    c = Clock(48000, 120, "4/4")
    assert c.set_tempo(90, from_step=12) == 12
    d = Clock(48000, 120, "6/8")
    assert d.set_tempo(90, from_step=1) == 6  # the felt beat of 6/8 is a dotted quarter


def test_count_in_steps_come_before_step_zero():
    c = Clock(48000, 120, "3/4", count_in_bars=1)
    assert c.first_step == -12
    assert c.step_time(-12) == 0 and c.step_time(0) == 72000
    assert c.step_in_bar(-12) == 0 and c.step_in_bar(-1) == 11


@pytest.mark.parametrize("bpm", [0, 39.9, 240.5, 1e9, float("nan"), -120, "fast"])
def test_absurd_tempo_is_refused_with_a_clear_message(bpm):
    with pytest.raises(ValueError, match="tempo"):
        check_tempo(bpm)
    with pytest.raises(ValueError, match="tempo"):
        Clock(48000, 120).set_tempo(bpm, 0)


def test_bad_meter_and_count_in_are_refused():
    with pytest.raises(ValueError, match="meter"):
        Clock(48000, 120, "5/4")
    with pytest.raises(ValueError, match="count-in"):
        Clock(48000, 120, "4/4", count_in_bars=9)


def test_tempo_follower_finds_the_players_tempo_and_ignores_odd_notes():
    sr = 48000
    f = TempoFollower(sr, 100, smoothing=1.0)
    beat = sr * 60 / 108  # the player is at 108 BPM, the band at 100
    t = 0.0
    for length in (1, 1, 0.5, 0.5, 1, 2, 1, 0.37, 1, 1):  # 0.37 beats: an ornament
        f.add_onset(int(t))
        t += length * beat
    f.add_onset(int(t))
    assert f.estimate() == pytest.approx(108, abs=1.5)


def test_tempo_follower_waits_for_evidence():
    f = TempoFollower(48000, 100)
    f.add_onset(0)
    f.add_onset(28800)
    assert f.estimate() is None
