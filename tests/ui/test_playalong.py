"""Playing along with a melody file: reading it (liveband.playalong, through the engine's
melody reader), and sending its notes on the session's clock."""

from dataclasses import replace

import mido
import pytest

from liveband.playalong import melody_steps
from ui.playalong import NotePlayer


def write_midi(path, notes, tpb=480, drums=()):
    """notes: (start_beat, length_beats, pitch) on channel 0; drums on channel 9."""
    events = []
    for start, length, pitch, ch in [(*n, 0) for n in notes] + [(*d, 9) for d in drums]:
        events.append((int(start * tpb), 1, "note_on", pitch, ch))
        events.append((int((start + length) * tpb), 0, "note_off", pitch, ch))
    events.sort()
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    t = 0
    for tick, _, kind, pitch, ch in events:
        tr.append(mido.Message(kind, note=pitch, velocity=90 if kind == "note_on" else 0, channel=ch, time=tick - t))
        t = tick
    mid.save(str(path))


def test_a_melody_file_becomes_notes_on_the_16th_grid(tmp_path):
    f = tmp_path / "tune.mid"
    # A pickup on beat 4 of bar 2, then a half note; a drum hit that must be ignored.
    write_midi(f, [(7, 1, 67), (8, 2, 72)], drums=[(8, 0.5, 36)])
    assert melody_steps(f) == [(12.0, 4.0, 67), (16.0, 8.0, 72)]


def test_a_song_file_plays_its_melody_track_only(tmp_path):
    """The melody the band would accompany in the file (engine.melody_file picks it), not
    the file's accompaniment too."""
    f = tmp_path / "song.mid"
    write_midi(f, [(0, 2, 72), (2, 2, 74)])
    mid = mido.MidiFile(str(f))
    chords = mido.MidiTrack()  # a lower, chordal accompaniment on channel 1
    for pitch in (48, 52, 55):
        chords.append(mido.Message("note_on", note=pitch, velocity=70, channel=1, time=0))
    chords.append(mido.Message("note_off", note=48, velocity=0, channel=1, time=4 * 480))
    chords.append(mido.Message("note_off", note=52, velocity=0, channel=1, time=0))
    chords.append(mido.Message("note_off", note=55, velocity=0, channel=1, time=0))
    mid.tracks.append(chords)
    mid.save(str(f))
    assert melody_steps(f) == [(0.0, 8.0, 72), (8.0, 8.0, 74)]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"MThd garbage", "not a readable MIDI file"),
        (None, "has no notes"),
    ],
)
def test_unusable_files_give_one_readable_line(tmp_path, content, message):
    f = tmp_path / "bad.mid"
    if content is None:
        mido.MidiFile().save(str(f))
    else:
        f.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        melody_steps(f)
    with pytest.raises(ValueError, match="no such file"):
        melody_steps(tmp_path / "missing.mid")


def run_player(fake_session, notes, steps, **kw):
    sent = []
    player = NotePlayer(fake_session, notes, lambda p, d: sent.append((fake_session.snap.step, p, d)), **kw)
    done = []
    player.finished.connect(lambda: done.append(True))
    for step in steps:
        fake_session.snap = replace(fake_session.snap, playing=True, step=step)
        player._tick()
    return sent, done


def test_notes_start_on_the_next_bar_and_follow_the_session_clock(qapp, fake_session):
    notes = [(0.0, 2.0, 60), (2.0, 2.0, 62), (4.0, 4.0, 64)]
    sent, done = run_player(fake_session, notes, [x * 0.5 for x in range(10, 70)])
    # The band was at step 5 when the player started: the tune begins at bar 2 (step 16).
    assert [(s, p, d) for s, p, d in sent if d] == [(16.0, 60, True), (18.0, 62, True), (20.0, 64, True)]
    offs = [(s, p) for s, p, d in sent if not d]
    assert offs == [(18.0, 60), (20.0, 62), (24.0, 64)]  # each ends 0.3 step early, on the next tick
    assert done == [True]


def test_looping_tune_restarts_and_never_leaves_a_note_hanging(qapp, fake_session):
    sent, done = run_player(fake_session, [(0.0, 4.0, 60)], [x * 0.25 for x in range(0, 150)], loop_steps=16)
    ons = [s for s, p, d in sent if d]
    assert ons == [0.25, 16.0, 32.0]  # waits for the playhead to leave 0 (the start lead-in)
    assert not done
    held = sum(1 if d else -1 for _, _, d in sent)
    assert held == 0


def test_stopping_the_band_ends_the_play_along(qapp, fake_session):
    sent = []
    player = NotePlayer(fake_session, [(0.0, 32.0, 60)], lambda p, d: sent.append((p, d)))
    done = []
    player.finished.connect(lambda: done.append(True))
    for step in (0.25, 1.0, 2.0):
        fake_session.snap = replace(fake_session.snap, playing=True, step=step)
        player._tick()
    fake_session.snap = replace(fake_session.snap, playing=False)
    player._tick()
    player._tick()
    assert sent == [(60, True), (60, False)] and done == [True]
