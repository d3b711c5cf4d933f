"""Tempo sync as logic: the MIDI clock's tempo and beat from jittery ticks, the beat lock
steering a real Clock onto a source, where a band joins a running source, and the MIDI
filter handing real-time messages on. Over real ports: tests/liveband/test_session_sync.py."""

from __future__ import annotations

import math
import time

import mido
import numpy as np
import pytest
from waiting import wait_for

from engine.clock import Clock
from engine.midi_io import NoteFilter
from engine.sync import TICKS_PER_QUARTER, BeatLock, MidiClockIn, start_point

RATE = 48000


def feed_ticks(mc: MidiClockIn, bpm: float, t0: float, n: int, jitter_s: float = 0.0, seed: int = 0) -> float:
    """n ticks from t0 at bpm, each arriving up to jitter_s late; returns the next tick's time."""
    rng = np.random.default_rng(seed)
    per = 60.0 / (bpm * TICKS_PER_QUARTER)
    for i in range(n):
        mc.feed("clock", t0 + i * per + rng.uniform(0, jitter_s))
    return t0 + n * per


def test_midi_clock_tempo_and_beat_through_jitter_and_a_tempo_jump():
    mc = MidiClockIn()
    assert mc.tempo is None and mc.time_at(0.0) is None
    t = feed_ticks(mc, 100.0, time.monotonic(), 3)
    assert mc.tempo is None  # too few ticks to say
    mc.feed("start", t)
    t = feed_ticks(mc, 100.0, t, 96, jitter_s=0.005)  # a JACK period of arrival jitter
    assert abs(mc.tempo - 100.0) < 0.3, mc.tempo
    # song position 0 is the first tick after the start; beat 4 is 96 ticks on
    assert abs(mc.time_at(4.0) - (t + 0.0025)) < 0.002, mc.time_at(4.0) - t
    assert abs(mc.position_at(t + 0.6) - 5.0) < 0.01
    t = feed_ticks(mc, 130.0, t, 24, jitter_s=0.005)  # one beat after a jump
    assert abs(mc.tempo - 130.0) < 1.0, mc.tempo


def test_a_stall_that_delivers_late_ticks_at_once_does_not_move_the_beat():
    # JACK hands MIDI over once per period (256 frames), so each tick arrives at the end of
    # the period it was sent in; a 250 ms stall (the GIL, the server) then delivers twelve
    # ticks at once. The beat two beats ahead must stay where the clock puts it.
    period, per = 256 / 48000, 60.0 / (120.0 * TICKS_PER_QUARTER)
    now = [0.0]
    mc = MidiClockIn(now=lambda: now[0])
    mc.feed("start", 0.0)
    errors = []
    for i in range(24 * 60):
        sent = 0.001 + i * per
        arrived = (math.floor((sent - 0.002) / period) + 1) * period + 0.002
        if 20.0 <= arrived < 20.25:
            arrived = 20.25
        now[0] = arrived
        mc.feed("clock", arrived)
        if i >= 72:
            q = i // TICKS_PER_QUARTER + 2
            errors.append(mc.time_at(q) - (0.001 + q * TICKS_PER_QUARTER * per))
    errors_ms = np.abs(np.array(errors) - np.median(errors)) * 1000.0
    assert errors_ms.max() < 2.0, errors_ms.max()  # a line through the burst is 0.2 s off
    assert mc.jumps == 0  # and was taken for a tempo jump


def test_transport_messages_and_song_position():
    said = []
    mc = MidiClockIn(on_transport=said.append)
    t = feed_ticks(mc, 120.0, time.monotonic(), 48)
    mc.feed("stop", t)
    mc.feed("songpos", t, 16)  # 16 sixteenths: bar 2
    mc.feed("continue", t)
    t = feed_ticks(mc, 120.0, t, 24)
    assert said == ["stop", "continue"]
    assert abs(mc.position_at(t) - 5.0) < 0.01  # 4 quarters of song position + 1 beat played


def test_a_clock_pause_restarts_the_line_and_a_stopped_clock_has_no_tempo():
    now = [0.0]
    mc = MidiClockIn(now=lambda: now[0])
    t = feed_ticks(mc, 90.0, 0.0, 48)
    t = feed_ticks(mc, 150.0, t + 2.0, 12)  # after 2 s of silence, a new tempo
    now[0] = t
    assert abs(mc.tempo - 150.0) < 1.0, mc.tempo
    now[0] = t + 1.5  # the device went quiet without a stop
    assert mc.tempo is None
    assert start_point(mc, 4.0, 4, now[0]) is None  # Play then plays on the band's own tempo


class LinearSource:
    """A source whose beat runs at ``bpm`` from ``t0`` (monotonic seconds), tempo changeable."""

    def __init__(self, bpm: float, t0: float = 0.0) -> None:
        self.t0, self.p0, self.bpm = t0, 0.0, bpm

    @property
    def tempo(self) -> float:
        return self.bpm

    def set(self, bpm: float, t: float) -> None:
        self.p0, self.t0, self.bpm = self.position_at(t), t, bpm

    def time_at(self, p: float) -> float:
        return self.t0 + (p - self.p0) * 60.0 / self.bpm

    def position_at(self, t: float) -> float:
        return self.p0 + (t - self.t0) * self.bpm / 60.0


def test_beat_lock_pulls_the_band_onto_the_source_and_through_a_tempo_change():
    src = LinearSource(100.0)
    to_sample = lambda t: int(round(t * RATE))  # noqa: E731
    # the band starts 20 ms late and 3 BPM off
    clock = Clock(RATE, 103.0, "4/4", 0, start_sample=to_sample(0.020))
    lock = BeatLock(src, clock, to_sample)
    err = []
    for k in range(0, 4 * 64):
        if k == 4 * 32:
            src.set(130.0, clock.step_time(k) / RATE)
        if k % 4 == 0:
            err.append((clock.step_time(k) - to_sample(src.time_at(k / 4))) / RATE * 1000.0)
        lock.on_step(k - 1)  # the generator is about to commit k
    err = np.abs(err)
    assert err[0] > 19
    assert err[8:32].max() < 0.05, err[:32]  # locked within a sample or two
    assert err[40:].max() < 0.05, err[32:]  # and again after the jump to 130
    assert abs(clock.tempo_at_step(4 * 63) - 130.0) < 0.1
    # without the lock the band would drift 3 BPM away: the lock is what holds it
    free = Clock(RATE, 103.0, "4/4", 0, start_sample=to_sample(0.020))
    assert abs(free.step_time(4 * 30) / RATE - LinearSource(100.0).time_at(30)) > 0.5


def test_start_point_joins_on_the_next_beat_with_bars_aligned():
    src = LinearSource(120.0, t0=0.0)  # beat every 0.5 s, bars of 4
    offset, first = start_point(src, 4.0, 4, earliest=5.1)  # position 10.2
    assert offset == 8.0 and first == 12  # bar at beat 8, join at beat 11 (step 12)
    assert start_point(src, 3.0, 6, earliest=5.1) == (9.0, 6)  # 6/8: dotted quarters
    assert start_point(MidiClockIn(), 4.0, 4, 0.0) is None


def test_note_filter_hands_realtime_messages_on_and_intercepts_controls():
    got, notes, seen = [], [], []

    def intercept(msg, at):
        seen.append(msg.type)
        return msg.type == "control_change" and msg.control == 80

    f = NoteFilter(
        lambda p, on, v, at: notes.append(p),
        lambda c, v, at: None,
        on_realtime=lambda kind, at, value: got.append((kind, value)),
        intercept=intercept,
        channel=0,
    )
    parser = mido.Parser()
    parser.feed(bytes([0xF8, 0xFA, 0xF2, 0x10, 0x00, 0xFB, 0xFC, 0xB3, 80, 127, 0x90, 60, 90, 0x93, 61, 90]))
    for msg in parser:
        f(msg)
    assert got == [("clock", 0), ("start", 0), ("songpos", 16), ("continue", 0), ("stop", 0)]
    assert notes == [60]  # 61 was on another channel
    assert seen == ["control_change", "note_on", "note_on"]  # every channel is offered first


def test_a_clock_delay_setting_moves_the_beat_earlier():
    a, b = MidiClockIn(), MidiClockIn()
    b.delay_s = 0.003
    t0 = time.monotonic()
    for mc in (a, b):
        mc.feed("start", t0)
        feed_ticks(mc, 120.0, t0, 48)
    assert abs((a.time_at(3.0) - b.time_at(3.0)) - 0.003) < 1e-9


def test_link_start_stop_reaches_the_other_peer_both_ways():
    pytest.importorskip("aalink")
    from engine.sync import LinkSync

    heard_a, heard_b = [], []
    a = LinkSync(120.0, on_transport=heard_a.append)
    b = LinkSync(120.0, on_transport=heard_b.append)
    try:
        assert wait_for(lambda: a.num_peers >= 1 and b.num_peers >= 1, 10.0), "the peers never found each other"
        assert not a.playing and not b.playing
        # a starts where its first beat will sound (0.4 s on): b hears the start
        t0 = time.monotonic()
        p0 = a.position_at(t0)
        a.set_playing(True, at=t0 + 0.4)
        assert wait_for(lambda: heard_b == ["start"], 5.0), heard_b
        assert b.playing
        # Link reports a's own change back to it too (the session ignores it while playing)
        assert wait_for(lambda: heard_a == ["start"], 5.0), heard_a
        # the beat did not move: a timed start keeps Link's timeline where it was
        assert abs(a.position_at(t0) - p0) < 0.01 and abs(b.position_at(t0) - p0) < 0.01
        b.set_playing(False)
        assert wait_for(lambda: heard_a == ["start", "stop"], 5.0), heard_a
        assert not a.playing
    finally:
        a.close()
        b.close()


def test_a_stale_link_report_is_dropped():
    pytest.importorskip("aalink")
    from engine.sync import LinkSync

    heard = []
    a = LinkSync(120.0, on_transport=heard.append)
    try:
        a.link.playing = False  # the transport is stopped again by the time the report runs
        a._start_stop(True)
        assert heard == []
        a.link.playing = True
        a._start_stop(True)
        assert heard == ["start"]
    finally:
        a.close()


def beat_errors_with_audio_lost(lost_s: float, at_step: int, beats: int) -> tuple[np.ndarray, BeatLock]:
    """|error| (ms) of each beat of a band locked onto a 120 BPM source, its audio clock's
    samples reaching the DAC ``lost_s`` later from step ``at_step`` on (a dropout, a
    frozen process, a server that skipped periods), measured at the lock's offset."""
    src = LinearSource(120.0)
    lost = [0.0]
    to_sample = lambda t: int(round((t - lost[0]) * RATE))  # noqa: E731
    clock = Clock(RATE, 120.0, "4/4", 0, start_sample=to_sample(0.0))
    lock = BeatLock(src, clock, to_sample)
    err = []
    for k in range(0, 4 * beats):
        if k == at_step:
            lost[0] = lost_s
        if k % 4 == 0:
            q = k / 4 + lock.offset
            err.append((clock.step_time(k) - to_sample(src.time_at(q))) / RATE * 1000.0)
        lock.on_step(k - 1)
    return np.abs(err), lock


def test_beat_lock_after_a_dropout_of_seconds_rejoins_the_sources_bars_instead_of_rushing():
    # a dropout (or a frozen process) holds everything scheduled back by its length: the
    # audio clock's samples reach the DAC 4.3 s later than before from then on
    err, lock = beat_errors_with_audio_lost(4.3, 4 * 16, 40)
    assert err[4:16].max() < 0.05 and err[16] > 4000, err[:18]
    # the band joins the source two bars on (8 beats = 4 s), bar lines on bar lines, and
    # catches the remaining 0.3 s up within 3 beats (at 25 % per beat: 34 beats of rushing)
    assert err[19:].max() < 0.05, err[16:24]
    assert lock.relocks == 1 and lock.offset == 8.0, (lock.relocks, lock.offset)
    assert lock.offset_at(4 * 16 - 1) == 0.0 and lock.offset_at(4 * 17) == 8.0  # from the beat steered on


def test_a_tick_lost_on_the_way_is_counted_in_and_the_beat_stays_on_the_senders():
    # JACK drops a period's MIDI when its server misses a cycle: one tick never arrives.
    # Counting on would put every later beat a tick (20.8 ms at 120 BPM) behind the sender.
    period, per = 256 / 48000, 60.0 / (120.0 * TICKS_PER_QUARTER)
    now = [0.0]
    mc = MidiClockIn(now=lambda: now[0])
    mc.feed("start", 0.0)
    rng = np.random.default_rng(1)
    errors = []
    for i in range(24 * 40):
        sent = 0.001 + i * per
        arrived = (math.floor((sent - 0.002) / period) + 1) * period + 0.002 + rng.uniform(0, 0.0005)
        if i in (300, 611, 612):  # one tick lost, later two in a row
            continue
        now[0] = arrived
        mc.feed("clock", arrived)
        if i >= 72:
            q = i // TICKS_PER_QUARTER + 2
            errors.append(mc.time_at(q) - (0.001 + q * TICKS_PER_QUARTER * per))
    errors_ms = np.abs(np.array(errors) - np.median(errors)) * 1000.0
    assert mc.lost == 3 and mc.jumps == 0, (mc.lost, mc.jumps)
    assert np.percentile(errors_ms, 99) < 2.0 and errors_ms[-300:].max() < 2.0, errors_ms.max()
    assert abs(mc.tempo - 120.0) < 0.3


@pytest.mark.parametrize("bpm_after", [60.0, 80.0, 110.0])
def test_a_slower_tempo_is_a_tempo_change_not_lost_ticks(bpm_after):
    mc = MidiClockIn()
    t = time.monotonic()
    mc.feed("start", t)
    t = feed_ticks(mc, 120.0, t, 96, jitter_s=0.003)
    feed_ticks(mc, bpm_after, t, 48, jitter_s=0.003)
    assert mc.lost == 0 and abs(mc.tempo - bpm_after) < 1.5, (mc.lost, mc.tempo)


def test_audio_time_lost_in_a_server_stall_is_taken_out_at_the_next_beat():
    # a JACK server that skips two periods (10.7 ms at 256 frames) makes everything the
    # band scheduled sound that much later: the lock must not take four beats over it
    err, _ = beat_errors_with_audio_lost(512 / RATE, 4 * 16 + 2, 32)
    assert err[16] < 0.05 and err[17] > 10.0, err[15:19]  # the beat after the loss is late
    assert max(err[18:]) < 0.05, err[16:22]  # and the next one is on the source again
