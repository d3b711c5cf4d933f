"""Offline render through the live engine with the real SoundFont: audible, on the grid,
each part present, deterministic, causal; and reading melodies from MIDI files."""

from pathlib import Path

import mido
import numpy as np
import pytest
from toy_band import band_for_tests

from engine import parts as P
from engine.events import NOTE_ON
from engine.melody_file import Melody, MelodyFileError, MelodyNote, fit_to_range, read_melody_midi
from engine.midi_export import write_midi
from engine.offline import RenderSettings, render_frames, render_melody
from engine.synth import SoundFontError

SR = 48000
# "The Girl I Left Behind Me" (traditional), first strain, as (beats, pitch) pairs
TUNE = [
    (1, 67),
    (0.5, 69),
    (0.5, 67),
    (1, 64),
    (1, 67),
    (1, 72),
    (0.5, 74),
    (0.5, 72),
    (1, 71),
    (1, 69),
    (1, 67),
    (0.5, 69),
    (0.5, 67),
    (1, 64),
    (1, 62),
    (1, 60),
    (1, 64),
    (2, 62),
    (1, 67),
    (0.5, 69),
    (0.5, 67),
    (1, 64),
    (1, 67),
    (1, 72),
    (0.5, 74),
    (0.5, 72),
    (1, 71),
    (1, 69),
    (1, 67),
    (1, 72),
    (1, 71),
    (1, 74),
    (4, 72),
]


def nottingham_midi(path: Path, tune=TUNE, bpm=110.0, tpb=1024) -> Path:
    """A file laid out like the Nottingham MIDI set: unnamed tracks on channel 0, melody
    in track 0, block chords in track 1, 1024 ticks per beat, key/time signatures."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mel = mido.MidiTrack()
    mel.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    mel.append(mido.MetaMessage("key_signature", key="C"))
    mel.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    for beats, pitch in tune:
        mel.append(mido.Message("note_on", note=pitch, velocity=100, time=0))
        mel.append(mido.Message("note_off", note=pitch, velocity=0, time=int(beats * tpb)))
    chords = mido.MidiTrack()
    total = sum(b for b, _ in tune)
    for bar in range(int(total // 4)):
        root = (48, 53, 55, 48)[bar % 4]
        for i, p in enumerate((root, root + 4, root + 7)):
            chords.append(mido.Message("note_on", note=p, velocity=70, time=0))
        for i, p in enumerate((root, root + 4, root + 7)):
            chords.append(mido.Message("note_off", note=p, velocity=0, time=4 * tpb if i == 0 else 0))
    mid.tracks += [mel, chords]
    mid.save(str(path))
    return path


@pytest.fixture(scope="module")
def melody(tmp_path_factory) -> Melody:
    return read_melody_midi(nottingham_midi(tmp_path_factory.mktemp("tune") / "girl.mid"))


@pytest.fixture(scope="module")
def rendered(melody, soundfont, tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3)
    r = render_melody(melody, band_for_tests(0), s, soundfont, out / "a.wav", keep_audio=True)
    write_midi(out / "a.mid", r.events, r.clock)
    return r, out


def test_the_melody_track_of_a_nottingham_file_is_found(melody):
    assert melody.tempo == pytest.approx(110) and melody.meter == "4/4"
    assert [n.pitch for n in melody.notes] == [p for _, p in TUNE]
    assert melody.notes[2].start == pytest.approx(1.5) and melody.end_beat == pytest.approx(sum(b for b, _ in TUNE))


def test_render_is_audible_and_every_part_is_in_the_midi(rendered):
    r, out = rendered
    assert r.audio is not None and np.isfinite(r.audio).all()
    rms = float(np.sqrt(np.mean(r.audio**2)))
    assert rms > 0.01 and np.abs(r.audio).max() <= 1.0
    mid = mido.MidiFile(str(out / "a.mid"))
    tracks = {
        t.name.split(" (")[0].upper(): sum(1 for m in t if m.type == "note_on" and m.velocity > 0) for t in mid.tracks
    }
    for part in ("BASS", "KEYS", "PAD", "DRUMS", "MELODY"):
        assert tracks.get(part, 0) > 0, (part, tracks)
    # the WAV on disk is the same mix
    import wave

    with wave.open(str(out / "a.wav")) as w:
        assert w.getframerate() == SR and w.getnchannels() == 2 and w.getnframes() == r.frames


def test_band_onsets_sit_on_their_16th_step_within_a_millisecond(rendered):
    r, out = rendered
    mid = mido.MidiFile(str(out / "a.mid"))
    step_s = 60.0 / 110 / 4
    checked = 0
    for tr in mid.tracks:
        if tr.name.split(" (")[0].upper() not in ("BASS", "KEYS", "PAD", "DRUMS"):
            continue
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                sec = mido.tick2second(tick, mid.ticks_per_beat, mido.bpm2tempo(110))
                assert abs(sec - round(sec / step_s) * step_s) < 1e-3
                checked += 1
    # and in simulated time (samples), before any file rounding
    band = [e for e in r.events if e[1] == NOTE_ON and e[2] != P.MELODY.channel]
    for t, *_ in band:
        k = r.clock.step_at(t)
        assert abs(t - r.clock.step_time(k)) * 1000 / SR < 1.0
    assert checked > 50 and len(band) == checked


def test_same_seed_same_render_other_seed_other_band(melody, soundfont, rendered):
    r, _ = rendered
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3)
    again = render_melody(melody, band_for_tests(0), s, soundfont, keep_audio=True)
    assert again.events == r.events and np.array_equal(again.audio, r.audio)
    other = render_melody(melody, band_for_tests(0), RenderSettings(tempo=110, seed=4), soundfont)
    assert other.events != r.events


def test_changing_the_melody_after_t_never_changes_audio_committed_before_t(melody, soundfont, rendered):
    r, _ = rendered
    cut_beat = 16.0
    changed = Melody(
        tuple(n if n.start < cut_beat else MelodyNote(n.start, n.end, n.pitch - 5, n.velocity) for n in melody.notes),
        melody.tempo,
        melody.meter,
        melody.source_meter,
        melody.track,
    )
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3)
    b = render_melody(changed, band_for_tests(0), s, soundfont, keep_audio=True)
    t_cut = r.clock.beat_to_sample(cut_beat)
    assert np.array_equal(r.audio[:t_cut], b.audio[:t_cut])
    assert [e for e in r.events if e[0] < t_cut] == [e for e in b.events if e[0] < t_cut]
    assert not np.array_equal(r.audio[t_cut:], b.audio[t_cut:])


def test_a_named_melody_track_wins_and_a_file_without_notes_is_refused(tmp_path):
    mid = mido.MidiFile(type=1)
    low = mido.MidiTrack(
        [mido.MetaMessage("track_name", name="MELODY")]
        + [mido.Message("note_on", note=50, velocity=80, time=0), mido.Message("note_off", note=50, time=480)]
    )
    high = mido.MidiTrack(
        [mido.MetaMessage("track_name", name="PIANO")]
        + [mido.Message("note_on", note=80, velocity=80, time=0), mido.Message("note_off", note=80, time=480)]
    )
    mid.tracks += [high, low]
    mid.save(str(tmp_path / "pop.mid"))
    assert [n.pitch for n in read_melody_midi(tmp_path / "pop.mid").notes] == [50]
    empty = mido.MidiFile(type=1)
    empty.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    empty.save(str(tmp_path / "empty.mid"))
    with pytest.raises(MelodyFileError, match="no notes"):
        read_melody_midi(tmp_path / "empty.mid")
    (tmp_path / "junk.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(MelodyFileError, match="not a readable MIDI"):
        read_melody_midi(tmp_path / "junk.mid")


def test_a_melody_out_of_range_moves_by_octaves():
    low = Melody((MelodyNote(0, 1, 30), MelodyNote(1, 2, 35)), 100.0, "4/4", "4/4", "t")
    fitted, shift = fit_to_range(low, (52, 93))
    assert shift == 24 and [n.pitch for n in fitted.notes] == [54, 59]
    ok, zero = fit_to_range(fitted, (52, 93))
    assert zero == 0 and ok is fitted


def test_the_live_worker_thread_on_the_simulated_clock_renders_the_same_bits(melody, soundfont, rendered):
    r, _ = rendered
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3, worker_thread=True)
    threaded = render_melody(melody, band_for_tests(0), s, soundfont, keep_audio=True)
    assert threaded.metrics.late_steps == 0
    assert threaded.events == r.events and np.array_equal(threaded.audio, r.audio)


def test_the_audio_rendered_in_a_second_process_is_the_same_bits(melody, soundfont, rendered):
    # the band in this process, synth + mixer + WAV in a forked one, at the same time
    r, out = rendered
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3, synth_process=True)
    two = render_melody(melody, band_for_tests(0), s, soundfont, out / "two.wav", keep_audio=True)
    assert two.metrics.late_steps == 0 and two.late_mixer_events == 0
    assert two.events == r.events and np.array_equal(two.audio, r.audio)
    assert (out / "two.wav").read_bytes() == (out / "a.wav").read_bytes()


def test_a_failure_in_the_audio_process_is_raised_here_and_writes_no_wav(melody, tmp_path):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF" + bytes(64))
    s = RenderSettings(tempo=110, seed=3, synth_process=True)
    with pytest.raises(SoundFontError, match="cannot load SoundFont"):
        render_melody(melody, band_for_tests(0), s, junk, tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_a_chorale_in_six_eight_has_no_drums_and_keeps_its_grid(soundfont):
    jig = Melody(
        tuple(MelodyNote(i * 0.5, i * 0.5 + 0.45, (67, 69, 71, 72, 71, 69)[i % 6]) for i in range(36)),
        None,
        "6/8",
        "6/8",
        "t",
    )
    r = render_melody(jig, band_for_tests(0), RenderSettings(style="chorale", tempo=90, meter="6/8", seed=1), soundfont)
    assert r.clock.bar_steps == 12
    ons = [e for e in r.events if e[1] == NOTE_ON]
    assert not [e for e in ons if e[2] == P.DRUMS.channel]
    band = [e for e in ons if e[2] in (P.BASS.channel, P.KEYS.channel, P.PAD.channel)]
    assert band and all(r.clock.step_time(r.clock.step_at(t)) == t for t, *_ in band)


def test_an_offline_model_renders_knowing_the_melody_a_beat_ahead(melody, soundfont):
    """A teacher that hears t + 4 (lookahead -4): the band before the melody changes at
    beat 16 already answers it within the beat before, and not earlier."""
    import dataclasses

    from models.pattern import Pattern
    from models.runtime import DEBUG_CONFIG, debug_model

    cfg = dataclasses.replace(DEBUG_CONFIG, pattern=Pattern("delay", lookahead=-4))
    cut_beat = 16.0
    changed = Melody(
        tuple(n if n.start < cut_beat else MelodyNote(n.start, n.end, n.pitch - 5, n.velocity) for n in melody.notes),
        melody.tempo,
        melody.meter,
        melody.source_meter,
        melody.track,
    )
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3)
    a, b = (render_melody(m, debug_model(0, cfg).accompanist(), s, soundfont) for m in (melody, changed))
    t_ahead, t_cut = a.clock.beat_to_sample(cut_beat - 1), a.clock.beat_to_sample(cut_beat)

    def window(r, lo, hi):
        return [e for e in r.events if lo <= e[0] < hi and e[2] != P.MELODY.channel]

    assert window(a, 0, t_ahead) == window(b, 0, t_ahead)
    assert window(a, t_ahead, t_cut) != window(b, t_ahead, t_cut)
    assert a.metrics.late_steps == 0


def test_the_length_of_a_render_is_known_before_it_starts(rendered, melody):
    r, _ = rendered
    assert render_frames(melody, RenderSettings(style="pop", tempo=110, meter="4/4", seed=3)) == r.frames


@pytest.mark.parametrize("synth_process", [False, True])
def test_a_render_that_clips_says_so_and_a_clean_one_does_not(rendered, melody, soundfont, synth_process):
    r, _ = rendered
    assert r.mix.limited_frames == 0 and r.mix.nonfinite_blocks == 0 and r.mix.notices(SR) == []
    s = RenderSettings(style="pop", tempo=110, meter="4/4", seed=3, synth_process=synth_process)
    loud = render_melody(melody, band_for_tests(0), s, soundfont, keep_audio=True, synth_gain=10.0)
    assert np.abs(loud.audio).max() <= 0.98 + 1e-6  # the limiter held it ...
    assert loud.mix.limited_frames > SR and loud.mix.max_gain_reduction_db > 3.0  # ... and it is told
    notes = loud.mix.notices(SR)
    assert len(notes) == 1 and notes[0].startswith("the mix clipped") and "\n" not in notes[0]
