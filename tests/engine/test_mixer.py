"""The mixer renders the real FluidSynth synth sample-accurately at event offsets,
keeps cross-queue order, bounds its output, and advances the master clock."""

from __future__ import annotations

import numpy as np
import pytest

from engine.events import ALL_OFF, CONTROL, EVENT_DTYPE, IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue
from engine.mixer import Mixer
from engine.synth import Synth

SR = 48000


@pytest.fixture(scope="module")
def synth(soundfont):
    s = Synth(soundfont, sample_rate=SR, reverb=False)
    yield s
    s.close()


def fresh_mixer(synth, block=256, **kw) -> Mixer:
    synth.all_notes_off()
    synth.render(SR // 2)  # let any previous tails die out
    for ch in range(16):
        synth.control_change(ch, 120, 0)  # all sound off
    synth.render(256)
    return Mixer(synth, SR, block, **kw)


def onset(audio: np.ndarray, thresh: float = 1e-4) -> int:
    nz = np.flatnonzero(np.abs(audio).max(axis=1) > thresh)
    return int(nz[0]) if nz.size else -1


SYNTH_PERIOD = 64  # FluidSynth applies events at its internal 64-frame period boundaries


@pytest.mark.parametrize("offset", [0, 1, 63, 64, 100, 192, 255])
def test_event_at_offset_k_sounds_from_the_synth_period_that_contains_k(synth, offset):
    """The block is split at the event's offset, so the only quantisation left is
    FluidSynth's own 64-frame control period (1.3 ms at 48 kHz), not the block."""
    mixer = fresh_mixer(synth)
    q = EventQueue()
    mixer.add_queue(q)
    silent = mixer.render(512)  # two empty blocks first
    assert np.abs(silent).max() == 0.0
    t = 512 + 256 + offset  # inside the fourth block
    q.push(t, NOTE_ON, 0, 60, 127)
    audio = mixer.render(2048)
    got = onset(audio, 0.0) + 512
    period_start = -(-t // SYNTH_PERIOD) * SYNTH_PERIOD
    # A voice's first output sample is zero, so sound begins one frame after its period.
    assert got == period_start + 1, (t, got)
    assert got - t <= SYNTH_PERIOD
    assert mixer.clock == 512 + 2048


def test_without_block_splitting_the_onset_would_be_late(synth):
    """Contrast: the same event rendered with one 1024-frame block still starts in the
    period of its offset, not at the next block."""
    mixer = fresh_mixer(synth, block=1024)
    q = EventQueue()
    mixer.add_queue(q)
    q.push(700, NOTE_ON, 0, 60, 127)
    audio = mixer.render(2048)
    assert onset(audio, 0.0) == 705


def test_same_event_in_any_block_layout_gives_identical_audio(soundfont):
    """Block splitting is invisible: the result does not depend on the block size."""
    results = []
    for block in (64, 256, 100):
        with Synth(soundfont, sample_rate=SR, reverb=False) as own:  # identical start state
            mixer = Mixer(own, SR, 256)
            q = EventQueue()
            mixer.add_queue(q)
            q.push(300, NOTE_ON, 0, 64, 100)
            q.push(301, NOTE_ON, 1, 48, 90)
            q.push(5000, NOTE_OFF, 0, 64)
            results.append(mixer.render(9600, block=block))
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)
    np.testing.assert_allclose(results[0], results[2], atol=1e-6)
    assert np.abs(results[0]).max() > 0.01


PLAYER = 3  # the player's MIDI channel (engine.parts.MELODY)


def _player_waits(mixer: Mixer, offsets) -> list[int]:
    """Frames from each note-on's time to its first sound, one note at a time."""
    q = EventQueue()
    mixer.add_queue(q)
    waits = []
    for k in offsets:
        t = mixer.clock + 1024 + k
        q.push(t, NOTE_ON, PLAYER, 72, 127)
        q.push(t + 1500, CONTROL, PLAYER, 120, 0)  # all sound off before the next note
        before = mixer.render(t - mixer.clock)
        assert np.abs(before).max() == 0.0
        waits.append(onset(mixer.render(2048), 0.0))
    return waits


@pytest.mark.parametrize("phases", [2, 4])
def test_player_notes_start_within_a_fraction_of_a_synth_period_on_the_phase_set(soundfont, phases):
    """One FluidSynth starts a note at its next 64-frame period (up to 1.3 ms late); the
    player's channel on N synths spread over the period starts every note within 64/N
    frames (16 frames, 0.33 ms, with the default 4), whatever its offset: the jitter the
    player hears."""
    offsets = range(0, 64, 3)  # every phase of the period
    with Synth(soundfont, sample_rate=SR, reverb=False) as one, Synth(soundfont, sample_rate=SR, reverb=False) as two:
        single = _player_waits(Mixer(one, SR, 256), offsets)
        spread = Mixer(two, SR, 256)
        assert spread.enable_player_phases(PLAYER, phases)
        waits = _player_waits(spread, offsets)
    # (a voice's first output sample is zero, hence the +1)
    assert max(single) > 48 and min(single) == 1
    assert max(waits) <= SYNTH_PERIOD // phases and min(waits) == 1, waits
    assert len(set(waits)) > SYNTH_PERIOD // phases // 3 * 2  # spread over the fraction


def test_the_phase_set_releases_a_note_on_the_synth_that_plays_it(soundfont):
    """A pitch struck again lands on whichever synth is sooner; the note it interrupts
    and the final note-off still reach the right synth, so nothing hangs."""
    with Synth(soundfont, sample_rate=SR, reverb=False) as own:
        mixer = Mixer(own, SR, 256)
        assert mixer.enable_player_phases(PLAYER)
        q = EventQueue()
        mixer.add_queue(q)
        q.push(1024, NOTE_ON, PLAYER, 60, 110)  # main synth's period starts here
        q.push(1024 + 32 + 4800, NOTE_ON, PLAYER, 60, 110)  # another synth's, 0.1 s later
        q.push(20000, NOTE_OFF, PLAYER, 60)
        held = mixer.render(19000)
        tail = mixer.render(SR * 3)
    assert np.abs(held[-2000:]).max() > 0.01
    assert np.abs(tail[-SR // 4 :]).max() < 1e-4


def test_events_from_several_queues_are_merged_in_time_order(synth):
    mixer = fresh_mixer(synth)
    band, player = EventQueue(), EventQueue()
    mixer.add_queue(band)
    mixer.add_queue(player)
    log = EventQueue()
    mixer.set_event_log(log)
    band.push(10, NOTE_ON, 1, 40, 100)
    band.push(200, NOTE_OFF, 1, 40)
    player.push(IMMEDIATE, NOTE_ON, 0, 72, 100)
    player.push(IMMEDIATE, NOTE_OFF, 0, 72)
    mixer.render(256)
    out = np.zeros(8, EVENT_DTYPE)
    n = log.pop_until(10**9, out)
    assert n == 4
    assert list(out["time"][:n]) == [0, 0, 10, 200]
    assert list(out["kind"][:n]) == [NOTE_ON, NOTE_OFF, NOTE_ON, NOTE_OFF]


def test_late_event_plays_at_block_start_and_is_counted(synth):
    mixer = fresh_mixer(synth)
    q = EventQueue()
    mixer.add_queue(q)
    mixer.render(1024)
    q.push(100, NOTE_ON, 0, 60, 120)  # long past
    audio = mixer.render(256)
    assert mixer.late_events == 1
    assert 0 <= onset(audio, 1e-6) <= 4


def test_limiter_bounds_a_very_loud_mix(synth):
    mixer = fresh_mixer(synth, master_gain=40.0, ceiling=0.9)
    q = EventQueue()
    mixer.add_queue(q)
    for i, p in enumerate(range(36, 96, 3)):
        q.push(i, NOTE_ON, i % 9, p, 127)
    audio = mixer.render(SR // 2)
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() <= 0.9 + 1e-6
    assert np.abs(audio).max() > 0.5  # loud, not silenced
    assert mixer.gain_reduction_db > 6.0


def test_limiter_leaves_quiet_audio_untouched(synth):
    ys = []
    for gain in (1.0, 0.5):
        m = fresh_mixer(synth, master_gain=gain)
        q = EventQueue()
        m.add_queue(q)
        q.push(0, NOTE_ON, 0, 60, 60)
        ys.append(m.render(4800))
    ya, yb = ys
    assert np.abs(ya).max() < 0.9
    np.testing.assert_allclose(yb, ya * 0.5, atol=1e-6)


def test_mute_and_all_off_silence_a_channel(synth):
    mixer = fresh_mixer(synth)
    q = EventQueue()
    mixer.add_queue(q)
    q.push(0, NOTE_ON, 2, 60, 110)
    assert np.abs(mixer.render(4800)).max() > 0.01
    mixer.set_channel_mute(2, True)
    mixer.render(4800)  # CC7 0 applied, volume ramps down
    assert np.abs(mixer.render(2400)).max() < 1e-3
    mixer.set_channel_mute(2, False)
    assert np.abs(mixer.render(4800)).max() > 0.01
    q.push(mixer.clock, ALL_OFF, 2)
    mixer.render(SR)
    assert np.abs(mixer.render(2400)).max() < 1e-3


def test_metronome_clicks_on_beats_and_is_not_recorded(synth):
    class Tap:
        def __init__(self):
            self.blocks = []

        def write(self, block, clock):
            self.blocks.append(block.copy())

    mixer = fresh_mixer(synth)
    tap = Tap()
    assert mixer.tap is None
    mixer.set_tap(tap)
    assert mixer.tap is tap  # what a probe in front of it (liveband bench audio) passes blocks on to
    mixer.set_metronome(True, origin=1000, samples_per_beat=12000, beats_per_bar=4)
    audio = mixer.render(SR)
    starts = [1000 + k * 12000 for k in range(4)]
    for s in starts:
        assert np.abs(audio[s - 50 : s]).max() == 0.0
        assert np.abs(audio[s : s + 200]).max() > 0.05
    assert np.abs(np.concatenate(tap.blocks)).max() == 0.0


def test_work_time_is_measured_per_block(synth):
    mixer = fresh_mixer(synth)
    mixer.render(256 * 20)
    st = mixer.work_stats()
    assert st["blocks"] == 20
    assert 0 < st["p50_ms"] <= st["p99_ms"] <= st["max_ms"]
    assert st["p99_load"] == pytest.approx(st["p99_ms"] / (256 / SR * 1000), rel=0.05)


def test_metronome_tempo_change_announced_ahead_takes_effect_at_its_origin(synth):
    mixer = fresh_mixer(synth)
    mixer.set_metronome(True, origin=0, samples_per_beat=10000, beats_per_bar=4)
    mixer.render(5000)
    # from sample 30000 on (beat 3 of the old grid), beats every 6000 samples
    mixer.set_metronome(True, origin=30000, samples_per_beat=6000, beats_per_bar=4, first_beat=3)
    audio = np.concatenate([np.zeros((5000, 2), np.float32), mixer.render(50000)])
    env = np.abs(audio).max(axis=1)
    onsets = [i for i in range(1, len(env)) if env[i] > 0.01 and env[i - 300 : i].max() <= 0.01]
    expected = [10000, 20000, 30000, 36000, 42000, 48000, 54000]
    assert len(onsets) == len(expected)
    assert all(0 <= o - e <= 1 for o, e in zip(onsets, expected)), onsets  # the click's sine starts at 0
    # accents: beat 0 of a bar is louder; 30000 is beat 3, 36000 a downbeat
    assert env[36000:36100].max() > env[30000:30100].max()


def test_user_fader_scales_the_parts_own_volume(synth):
    levels = []
    for fader in (1.0, 0.5):
        mixer = fresh_mixer(synth)
        q = EventQueue()
        mixer.add_queue(q)
        mixer.set_channel_volume(4, fader)
        q.push(0, CONTROL, 4, 7, 80)  # the part's own level
        q.push(0, NOTE_ON, 4, 60, 100)
        levels.append(float(np.abs(mixer.render(9600)).max()))
        assert mixer._applied_vol[4] == int(80 * round(fader * 127)) // 127
    assert levels[1] < 0.6 * levels[0]


def _voices(mixer: Mixer) -> int:
    """Active voices on the mixer's synth and its player synths."""
    return mixer.synth.active_voices() + sum(t.active_voices() for t in mixer.synth._twins)


def _pedalled_chord(q: EventQueue, t: int) -> None:
    """Pedal down, three notes, their keys released: the pedal holds them."""
    q.push(t, CONTROL, PLAYER, 64, 127)
    for i, p in enumerate((60, 64, 67)):
        q.push(t + 10 + i, NOTE_ON, PLAYER, p, 100)
    for i, p in enumerate((60, 64, 67)):
        q.push(t + 4800 + i, NOTE_OFF, PLAYER, p)


@pytest.mark.parametrize("phases", [1, 4])
@pytest.mark.parametrize("panic", [(123,), (120,), (121,), (123, 120, 121)])
def test_a_panic_releases_notes_the_sustain_pedal_holds(soundfont, panic, phases):
    """All notes off, all sound off and reset all controllers each end what the pedal
    holds and lift the pedal (FluidSynth alone keeps pedalled notes through CC123 and
    keeps the pedal down through CC120), so nothing hangs and a later note decays."""
    with Synth(soundfont, sample_rate=SR, reverb=False) as own:
        mixer = Mixer(own, SR, 256)
        if phases > 1:
            assert mixer.enable_player_phases(PLAYER, phases)
        q = EventQueue()
        mixer.add_queue(q)
        _pedalled_chord(q, 0)
        mixer.render(9600)
        assert _voices(mixer) >= 3  # held by the pedal
        t = mixer.clock
        for cc in panic:
            q.push(t, CONTROL, PLAYER, cc, 0)
        tail = mixer.render(SR)  # the piano's release: < 1 s
        assert _voices(mixer) == 0, panic
        assert np.abs(tail[SR // 2 :]).max() < 1e-3  # -60 dB within half a second
        # the pedal is up: a new note ends with its key
        t = mixer.clock
        q.push(t, NOTE_ON, PLAYER, 62, 100)
        q.push(t + 4800, NOTE_OFF, PLAYER, 62)
        mixer.render(4800 + SR)
        assert _voices(mixer) == 0


def test_a_flood_of_player_notes_is_held_to_the_player_voice_limit(soundfont):
    """500 random note-ons under the pedal (a runaway controller) must not leave hundreds
    of voices sounding until pedal-up. The player's own synths hold at most PLAYER_VOICES
    (stealing released, then pedalled, then the oldest voices), the band's voices are not stolen, and the work per block
    after the flood stays a small part of the block."""
    import time

    from engine.mixer_body import PLAYER_VOICES

    rng = np.random.default_rng(7)
    block = 256
    with Synth(soundfont, sample_rate=SR, reverb=True) as own:
        mixer = Mixer(own, SR, block)
        assert mixer.enable_player_phases(PLAYER)
        band, q = EventQueue(), EventQueue()
        mixer.add_queue(band)
        mixer.add_queue(q)
        for p in (48, 52, 55):
            band.push(0, NOTE_ON, 0, p, 90)  # the band holds a chord meanwhile
        mixer.render(4 * block)
        band_voices = own.active_voices()
        assert band_voices >= 3
        player = lambda: sum(t.active_voices() for t in own._twins)  # noqa: E731
        t0 = mixer.clock
        q.push(t0, CONTROL, PLAYER, 64, 127)
        for t in np.sort(rng.integers(0, SR // 2, 500)) + t0:
            q.push(int(t), NOTE_ON, PLAYER, int(rng.integers(21, 109)), int(rng.integers(40, 128)))
        most = 0
        while mixer.clock < t0 + SR // 2:
            mixer.render(block)
            most = max(most, player())
        # A stolen voice is counted until the synth's next period frees it.
        assert most <= PLAYER_VOICES * 5 // 4, most
        mixer.render(block)
        assert 0 < player() <= PLAYER_VOICES
        assert own.active_voices() == band_voices
        work = []
        for _ in range(40):
            c = time.thread_time_ns()
            mixer.render(block)
            work.append(time.thread_time_ns() - c)
        assert np.median(work) < 0.1 * block / SR * 1e9, np.median(work) / 1e3


def test_only_xruns_beside_sound_count_as_dropouts(synth):
    """An idle stream's underflows replace silence with silence: counted as xruns (their
    causes matter) but not as dropouts the listener hears; one beside a note, or while
    the metronome clicks, is."""
    mixer = fresh_mixer(synth)
    q = EventQueue()
    mixer.add_queue(q)
    buf = np.zeros((256, 2), np.float32)
    for _ in range(5):
        mixer.process(buf, xrun=True)
    assert (mixer.xruns, mixer.audible_xruns) == (5, 0)
    q.push(mixer.clock, NOTE_ON, 0, 60, 100)
    mixer.render(2400)
    mixer.process(buf, xrun=True)  # a gap in the middle of the note
    assert (mixer.xruns, mixer.audible_xruns) == (6, 1)
    q.push(mixer.clock, ALL_OFF, 0)
    mixer.render(SR * 2)
    mixer.process(buf, xrun=True)
    assert mixer.audible_xruns == 1
    mixer.set_metronome(True, origin=mixer.clock + SR, samples_per_beat=SR)
    mixer.process(buf, xrun=True)
    assert (mixer.xruns, mixer.audible_xruns) == (8, 2)


def test_notes_struck_at_one_instant_all_sound_up_to_what_the_player_synths_can_start(soundfont):
    """Sixteen notes at the same sample (a MIDI burst: NOTE_BURST) all start, spread over
    the player's synths; beyond what they can start in one period notes are dropped,
    counted, and left out of the take's event log (it holds what was heard)."""
    from engine.midi_io import NOTE_BURST
    from engine.mixer_body import PLAYER_PHASES, STARTS_PER_PERIOD

    assert NOTE_BURST <= PLAYER_PHASES * STARTS_PER_PERIOD
    with Synth(soundfont, sample_rate=SR, reverb=False) as own:
        mixer = Mixer(own, SR, 256)
        assert mixer.enable_player_phases(PLAYER)
        q, log = EventQueue(), EventQueue()
        mixer.add_queue(q)
        mixer.set_event_log(log)
        for p in range(40, 40 + NOTE_BURST):
            q.push(1000, NOTE_ON, PLAYER, p, 90)
        mixer.render(2048)
        assert mixer.dropped_notes == 0
        assert sum(t.active_voices() > 0 for t in own._twins) == PLAYER_PHASES
        for p in range(60, 100):
            q.push(3000, NOTE_ON, PLAYER, p, 90)
        mixer.render(2048)
    out = np.zeros(64, EVENT_DTYPE)
    n = log.pop_until(10**9, out)
    assert mixer.dropped_notes == 40 - PLAYER_PHASES * STARTS_PER_PERIOD
    assert n == NOTE_BURST + PLAYER_PHASES * STARTS_PER_PERIOD


def test_blocks_of_nan_audio_are_silenced_and_counted(soundfont):
    class BrokenSample(Synth):
        """The real synth with NaN in two of its blocks, as a broken SoundFont sample gives."""

        poisoned = 0

        def render_into(self, out, start=0, stop=None):
            super().render_into(out, start, stop)
            if self.poisoned < 2 and self.frames_rendered > 2048:
                out[start, 0] = np.nan
                self.poisoned += 1

    s = BrokenSample(soundfont, sample_rate=SR, reverb=False)
    try:
        mixer = Mixer(s, SR, 256, hold_gil=False)  # hold_gil=False: render_into is the one called
        q = EventQueue()
        mixer.add_queue(q)
        q.push(0, NOTE_ON, 0, 60, 100)
        audio = mixer.render(SR // 4)
    finally:
        s.close()
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01
    assert mixer.nonfinite_blocks == 2
