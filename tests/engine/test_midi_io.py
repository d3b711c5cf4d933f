"""MIDI input filtering (channels, velocity 0, sustain pedal, junk) and the computer
keyboard mapping, as pure logic; real ports are exercised in tests/liveband."""

from __future__ import annotations

import mido
import pytest

from engine.midi_io import NoteFilter
from engine.midi_ports import list_ports


def collect(channel=None):
    notes, ccs = [], []
    f = NoteFilter(lambda p, on, v, at: notes.append((p, on, v)), lambda c, v, at: ccs.append((c, v)), channel)
    return f, notes, ccs


def test_notes_velocity_and_zero_velocity_note_on_as_release():
    f, notes, _ = collect()
    f(mido.Message("note_on", note=60, velocity=93))
    f(mido.Message("note_on", note=60, velocity=0))
    f(mido.Message("note_off", note=62))
    assert notes == [(60, True, 93), (60, False, 0), (62, False, 0)]


def test_channel_filter_keeps_only_the_chosen_channel():
    f, notes, _ = collect(channel=2)
    f(mido.Message("note_on", note=60, velocity=80, channel=0))
    f(mido.Message("note_on", note=61, velocity=80, channel=2))
    assert notes == [(61, True, 80)]
    with pytest.raises(ValueError):
        NoteFilter(lambda *a: None, channel=16)


def test_sustain_pedal_defers_releases_until_pedal_up_and_is_forwarded():
    f, notes, ccs = collect()
    f(mido.Message("note_on", note=60, velocity=80))
    f(mido.Message("control_change", control=64, value=127))
    f(mido.Message("note_off", note=60))
    f(mido.Message("note_on", note=64, velocity=70))
    f(mido.Message("note_off", note=64))
    f(mido.Message("note_on", note=60, velocity=90))  # re-struck while held by the pedal
    assert notes == [(60, True, 80), (64, True, 70), (60, True, 90)]
    f(mido.Message("control_change", control=64, value=0))
    assert notes[3:] == [(64, False, 0)]  # 60 is down again: still sounding
    assert ccs == [(64, 127), (64, 0)]


def test_every_other_message_and_garbage_is_ignored_safely():
    f, notes, ccs = collect()
    parser = mido.Parser()
    parser.feed(
        bytes(
            [
                0xF0,
                1,
                2,
                3,
                0xF7,
                0xF8,
                0xFA,
                0xE0,
                0,
                64,
                0xB0,
                1,
                20,
                0xC0,
                5,
                0x80,
                0x80,
                0xFF,
                0x12,
                0x34,
                0xA0,
                60,
                10,
                0xD0,
                30,
                0x90,
                60,
                100,
            ]
        )
    )
    for msg in parser:
        f(msg)
    f("not a message")
    f(None)
    assert notes == [(60, True, 100)]
    assert ccs == []
    assert f.ignored >= 7


def test_a_failing_sink_does_not_escape_the_midi_thread():
    def boom(*_):
        raise RuntimeError("sink bug")

    f = NoteFilter(boom)
    f(mido.Message("note_on", note=60, velocity=1))
    assert f.errors == 1


def test_list_ports_explains_an_empty_list():
    ins, outs, note = list_ports()
    assert isinstance(ins, list) and isinstance(outs, list)
    if not ins and not outs:
        assert note.startswith("no MIDI")  # ports, or devices when a MIDI system runs


def test_each_note_carries_the_moment_its_message_reached_the_filter():
    """The player's note is timed from when its message reached LiveBand, not from when
    our Python got round to queueing it; a pedal-held release carries the pedal's."""
    import time

    got = []
    f = NoteFilter(lambda p, on, v, at: got.append((p, on, at)), lambda c, v, at: got.append(("cc", v, at)))
    t0 = time.monotonic()
    f(mido.Message("note_on", note=60, velocity=90))
    t1 = time.monotonic()
    f(mido.Message("control_change", control=64, value=127))
    f(mido.Message("note_off", note=60))
    time.sleep(0.01)
    t2 = time.monotonic()
    f(mido.Message("control_change", control=64, value=0))
    assert got[0][:2] == (60, True) and t0 <= got[0][2] <= t1
    assert got[-1][:2] == (60, False) and got[-1][2] >= t2  # released when the pedal came up
    assert got[-2] == ("cc", 0, got[-1][2])


def test_only_a_live_jack_socket_counts_as_a_running_server(tmp_path, monkeypatch):
    """Trying a JACK client keeps the GIL for ms when no server answers, so the hot-plug
    poll asks for a live server socket first: the files a dead server leaves behind (its
    shared-memory registry, its socket) are not one."""
    import os
    import socket

    from engine.midi_ports import _jack_running

    monkeypatch.delenv("JACK_DEFAULT_SERVER", raising=False)
    d = str(tmp_path)
    (tmp_path / "jack-shm-registry").write_bytes(b"\0" * 64)
    (tmp_path / "jack_db-0").mkdir()
    assert not _jack_running((d,))
    name = os.path.join(d, f"jack_default_{os.getuid()}_0")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    assert not _jack_running((d,))  # bound, not listening: what a dead server leaves
    server.listen(1)
    try:
        assert _jack_running((d,))
    finally:
        server.close()
    assert not _jack_running((d,))
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "liveband-test")
    assert _jack_running((d,))


def test_the_hot_plug_poll_explains_no_ports_without_opening_new_clients(monkeypatch):
    """With no MIDI system working, each poll used to run a full scan (a new client per
    system, every second); the notice now comes from the probes' own failures."""
    import engine.midi_ports as mi

    def no_scan():
        raise AssertionError("poll opened a scan")

    monkeypatch.setattr(mi, "scan", no_scan)
    monkeypatch.setattr(mi, "_jack_running", lambda dirs=None: False)
    w = mi.PortWatcher()
    try:
        for _ in range(3):
            w.poll()
    finally:
        w.close()
    assert w.note == "" or w.note.startswith("no MIDI")
    if not w.inputs and not w.outputs and not w._probes:
        assert "no JACK server running" in w.note


def test_a_panic_from_the_controller_silences_what_the_pedal_holds(soundfont):
    """Pedal down, three notes, keys up, then CC123 + CC120 + CC121 (a DAW's panic) from
    the controller, through the filter to the real synth: every voice ends, the band hears
    every note end and the pedal is up again (the filter used to drop all three, leaving
    6 voices sounding until pedal-up)."""
    import numpy as np

    from engine.events import CONTROL, IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue
    from engine.mixer import Mixer
    from engine.synth import Synth

    sr, ch = 48000, 3
    q = EventQueue()
    heard = []

    def note(p, on, v, at):
        heard.append((p, on))
        q.push(IMMEDIATE, NOTE_ON if on else NOTE_OFF, ch, p, v)

    f = NoteFilter(note, lambda c, v, at: q.push(IMMEDIATE, CONTROL, ch, c, v))
    with Synth(soundfont, sample_rate=sr, reverb=False) as synth:
        mixer = Mixer(synth, sr, 256)
        assert mixer.enable_player_phases(ch)
        mixer.add_queue(q)
        voices = lambda: synth.active_voices() + sum(t.active_voices() for t in synth._twins)  # noqa: E731
        f(mido.Message("control_change", control=64, value=127))
        for p in (60, 64, 67):
            f(mido.Message("note_on", note=p, velocity=100))
        mixer.render(4800)
        for p in (60, 64, 67):
            f(mido.Message("note_off", note=p))
        mixer.render(4800)
        assert voices() == 6
        for cc in (123, 120, 121):
            f(mido.Message("control_change", control=cc, value=0))
        tail = mixer.render(sr)
        assert voices() == 0
        assert np.abs(tail[sr // 2 :]).max() < 1e-3
    assert not f.sustain
    assert sorted(p for p, on in heard if not on) == [60, 64, 67]


def test_reset_all_controllers_lifts_the_pedal_and_all_notes_off_ends_held_keys():
    f, notes, ccs = collect()
    f(mido.Message("control_change", control=64, value=127))
    f(mido.Message("note_on", note=60, velocity=80))
    f(mido.Message("note_on", note=62, velocity=80))
    f(mido.Message("note_off", note=60))
    f(mido.Message("control_change", control=121, value=0))
    assert notes[2:] == [(60, False, 0)] and not f.sustain  # 62's key is still down
    f(mido.Message("control_change", control=123, value=0))
    assert notes[3:] == [(62, False, 0)]
    f(mido.Message("note_off", note=62))  # its key comes up later
    assert notes[4:] == [(62, False, 0)]
    assert ccs == [(64, 127), (121, 0), (123, 0)]


def test_playing_fast_loses_nothing_but_a_flood_of_note_ons_is_thinned():
    """Two hands at their fastest (ten-note chords and 40-note/s runs, 10 s) all pass; a
    runaway device's 500 note-ons in 50 ms pass NOTE_BURST at once and NOTE_RATE per
    second after, and the note-offs of notes that never sounded are dropped with them."""
    from engine.midi_io import NOTE_BURST, NOTE_RATE

    f, notes, _ = collect()
    t = 1000.0
    for k in range(400):  # 10 s: a chord every 0.5 s, a run between
        chord = k % 20 == 0
        for p in range(48, 58) if chord else (60 + k % 24,):
            f._handle(mido.Message("note_on", note=p, velocity=80), t)
        t += 0.025
        for p in range(48, 58) if chord else (60 + k % 24,):
            f._handle(mido.Message("note_off", note=p), t)
    assert f.flooded == 0
    played = len(notes)
    assert played == 2 * (380 + 20 * 10)
    for k in range(500):
        f._handle(mido.Message("note_on", note=21 + k % 88, velocity=100), t + k * 1e-4)
    on = [n for n in notes[played:] if n[1]]
    assert NOTE_BURST <= len(on) <= NOTE_BURST + 0.05 * NOTE_RATE + 1
    assert f.flooded == 500 - len(on)
    for k in range(88):
        f._handle(mido.Message("note_off", note=21 + k), t + 0.06)
    off = [n for n in notes[played:] if not n[1]]
    assert sorted(p for p, _, _ in off) == sorted({p for p, _, _ in on})


def test_a_midi_flood_gives_the_audio_callback_a_bounded_block(soundfont):
    """500 note-ons arriving at once through the filter into the mixer and the real
    synth: the filter passes only NOTE_BURST of them, so the block that plays them takes
    under a fifth of its 5.3 ms (CPU time, so a busy machine does not count), and the
    player's voices stay within PLAYER_VOICES."""
    import time

    from engine.events import CONTROL, IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue
    from engine.mixer import Mixer
    from engine.mixer_body import PLAYER_VOICES
    from engine.synth import Synth

    sr, ch, block = 48000, 3, 256
    q = EventQueue()
    f = NoteFilter(
        lambda p, on, v, at: q.push(IMMEDIATE, NOTE_ON if on else NOTE_OFF, ch, p, v),
        lambda c, v, at: q.push(IMMEDIATE, CONTROL, ch, c, v),
    )
    with Synth(soundfont, sample_rate=sr, reverb=True) as synth:
        mixer = Mixer(synth, sr, block)
        assert mixer.enable_player_phases(ch)
        mixer.add_queue(q)
        mixer.render(8 * block)
        f(mido.Message("control_change", control=64, value=127))
        for k in range(500):
            f(mido.Message("note_on", note=21 + (k * 37) % 88, velocity=100))
        work = []
        for _ in range(4):
            c = time.thread_time_ns()
            mixer.render(block)
            work.append(time.thread_time_ns() - c)
        assert max(work) < 0.2 * block / sr * 1e9, [w // 1000 for w in work]
        assert sum(t.active_voices() for t in synth._twins) <= PLAYER_VOICES
    assert f.flooded > 400


def test_an_input_going_away_ends_every_note_it_holds_and_takes_no_more():
    """The controller is closed, switched or unplugged with a key down and the pedal
    holding another: both notes end, as the controller's note-offs would, at the moment
    given, and the pedal comes up; a message still in flight from the closed port is
    dropped, and a second release ends nothing twice."""
    f, notes, ccs = collect()
    f(mido.Message("control_change", control=64, value=127))
    f(mido.Message("note_on", note=60, velocity=80))
    f(mido.Message("note_on", note=64, velocity=80))
    f(mido.Message("note_off", note=64))  # the pedal holds it
    ended = []
    f.on_note = lambda p, on, v, at: ended.append((p, on, v, at))
    f.release_all(arrived=12.5)
    assert ended == [(60, False, 0, 12.5), (64, False, 0, 12.5)]
    assert ccs == [(64, 127), (64, 0)] and not f.sustain
    f(mido.Message("note_on", note=67, velocity=80))
    f.release_all()
    assert ended == [(60, False, 0, 12.5), (64, False, 0, 12.5)] and ccs == [(64, 127), (64, 0)]
    assert notes == [(60, True, 80), (64, True, 80)]
