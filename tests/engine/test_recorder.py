"""Session recording: the WAV on disk is valid while recording and after a crash, the
MIDI file holds exactly the logged events at their times, and sessions list/export."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
import wave

import mido
import numpy as np
import pytest
from waiting import wait_for

import engine.wav
from engine.events import NOTE_OFF, NOTE_ON
from engine.midi_export import TempoMark, samples_to_ticks
from engine.recorder import MIDI_NAME, WAV_NAME, Recorder, new_session_folder
from engine.takes import export_session, list_sessions
from engine.wav import HEADER_BYTES, WavWriter, pcm_bytes, repair_wav

SR = 48000


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == SR
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)


def test_wav_is_readable_after_each_flush_and_repairable_after_a_crash(tmp_path):
    path = tmp_path / "x.wav"
    w = WavWriter(path, SR)
    w.write(np.full((1000, 2), 0.5, np.float32))
    w.flush()
    assert read_wav(path).shape == (1000, 2)
    w.write(np.full((500, 2), -0.25, np.float32))  # appended, header not yet patched
    w._f.flush()  # ... and the process dies here
    assert read_wav(path).shape == (1000, 2)
    assert repair_wav(path) == 1500
    pcm = read_wav(path)
    assert pcm.shape == (1500, 2)
    assert pcm[0, 0] == round(0.5 * 32767) and pcm[-1, 1] == round(-0.25 * 32767)


def test_ticks_follow_the_tempo_map():
    tempi = [TempoMark(0, 120.0), TempoMark(SR, 60.0)]
    assert samples_to_ticks(SR, 0, SR, tempi) == 960  # 1 s at 120 BPM = 2 beats
    assert samples_to_ticks(2 * SR, 0, SR, tempi) == 960 + 480  # then 1 s at 60 BPM = 1 beat


def test_recorder_writes_wav_and_midi_incrementally_then_final(tmp_path):
    rec = Recorder(
        tmp_path / "s",
        SR,
        meta={"meter": "4/4", "style": "pop"},
        track_names={0: "Bass", 3: "Melody"},
        poll_s=0.05,
        flush_s=0.1,
        midi_every_s=0.1,
    )
    rec.set_tempo(10_000, 120.0)
    rec.start()
    blk = np.full((480, 2), 0.1, np.float32)
    t = 10_000
    for _ in range(100):  # one second of audio
        assert rec.ring.write(blk, t)
        t += 480
    rec.add_event(10_000 + SR // 2, NOTE_ON, 3, 64, 90)  # half a second in: beat 1 at 120 BPM
    rec.add_event(10_000 + SR, NOTE_OFF, 3, 64)
    rec.add_event(10_000 + SR // 4, NOTE_ON, 0, 40, 100)
    time.sleep(0.6)
    # while still recording, both files are already complete and readable
    assert read_wav(rec.wav_path).shape[0] == SR
    mid = mido.MidiFile(str(rec.midi_path))
    rec.stop()
    assert rec.error is None
    mid = mido.MidiFile(str(rec.midi_path))
    tracks = {t.name: t for t in mid.tracks[1:]}
    assert set(tracks) == {"Bass", "Melody"}
    notes = []
    for track in mid.tracks[1:]:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type in ("note_on", "note_off"):
                notes.append((track.name, msg.type, msg.note, tick))
    assert ("Melody", "note_on", 64, 480) in notes
    assert ("Melody", "note_off", 64, 960) in notes
    assert ("Bass", "note_on", 40, 240) in notes
    meta = json.loads((rec.folder / "session.json").read_text())
    assert meta["complete"] is True and meta["seconds"] == pytest.approx(1.0)
    assert meta["style"] == "pop" and meta["tempo"] == 120.0


def test_list_and_export_sessions(tmp_path):
    root = tmp_path / "sessions"
    folder = new_session_folder(root)
    second = new_session_folder(root)  # same second: gets a suffix, not a clash
    assert folder != second and second.name.startswith(folder.name)
    rec = Recorder(folder, SR, poll_s=0.05)
    rec.start()
    rec.ring.write(np.zeros((4800, 2), np.float32), 0)
    rec.add_event(0, NOTE_ON, 0, 40, 100)
    rec.stop()
    rows = list_sessions(root)
    assert [r["name"] for r in rows] == [folder.name]  # the empty folder is not a session
    assert rows[0]["complete"] and WAV_NAME in rows[0]["files"] and MIDI_NAME in rows[0]["files"]
    out = export_session(root, folder.name, tmp_path / "out")
    assert sorted(p.rsplit("-", 1)[-1] for p in out) == ["mix.wav", "session.json", "session.mid"]
    assert read_wav(tmp_path / "out" / f"{folder.name}-mix.wav").shape == (4800, 2)
    with pytest.raises(FileNotFoundError, match="nope"):
        export_session(root, "nope", tmp_path / "out")


def _absolute(path):
    """{track name: [(absolute tick, message type, channel, note/control, value)]}."""
    out = {}
    for tr in mido.MidiFile(str(path)).tracks:
        tick, name, rows = 0, None, []
        for m in tr:
            tick += m.time
            if m.type == "track_name":
                name = m.name
            elif m.type == "set_tempo":
                rows.append((tick, "tempo", round(mido.tempo2bpm(m.tempo), 3)))
            elif not m.is_meta:
                d = m.dict()
                rows.append(
                    (
                        tick,
                        m.type,
                        m.channel,
                        d.get("note", d.get("control", d.get("program"))),
                        d.get("velocity", d.get("value")),
                    )
                )
        out[name] = rows
    return out


def test_a_growing_take_is_encoded_incrementally_and_reads_back_like_a_whole_encoding(tmp_path):
    """The take's MIDI is rewritten every few seconds; encoding all of it each time cost
    300 ms of Python per write after 10 minutes. Appended events are encoded once, and
    the file equals a one-shot encoding of the same events after every write, through a
    tempo change announced ahead and an event that arrives out of order."""
    from engine.midi_export import MidiTakeWriter, write_take_midi

    names = {0: "bass", 9: "drums"}
    w = MidiTakeWriter(SR, "3/4", names)
    tempi = [TempoMark(0, 100.0)]
    events = []
    t = 1000
    for chunk in range(6):
        for k in range(40):
            t += 4000
            ch = 9 if k % 3 == 0 else 0
            events.append((t, NOTE_ON, ch, 36 + k % 12, 90))
            events.append((t + 1500, NOTE_OFF, ch, 36 + k % 12, 0))
        if chunk == 2:
            tempi.append(TempoMark(t + 10_000, 132.0))  # announced ahead of the events
        if chunk == 4:
            events.append((t - 50_000, NOTE_ON, 0, 80, 70))  # late: earlier than encoded ones
        w.write(tmp_path / "take.mid", events, 1000, tempi)
        write_take_midi(tmp_path / "whole.mid", events, 1000, SR, tempi, "3/4", names)
        assert _absolute(tmp_path / "take.mid") == _absolute(tmp_path / "whole.mid"), chunk
    # one whole encoding at the start, one for the late event; everything else appended
    assert w.reencoded == 2
    got = _absolute(tmp_path / "take.mid")
    first = events[0]
    assert got["bass"][0][0] == samples_to_ticks(first[0], 1000, SR, tempi) or got["drums"][0][0] == samples_to_ticks(
        first[0], 1000, SR, tempi
    )
    assert [r[2] for r in got[None] if r[1] == "tempo"] == [100.0, 132.0]


def _melody_notes(path, channel):
    """[(pitch, on tick, off tick)] of ``channel`` in the MIDI file, in order of onset."""
    notes, sounding = [], {}
    for tr in mido.MidiFile(str(path)).tracks:
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0 and m.channel == channel:
                sounding[m.note] = len(notes)
                notes.append([m.note, tick, None])
            elif m.type in ("note_off", "note_on") and m.channel == channel and m.note in sounding:
                notes[sounding.pop(m.note)][2] = tick
    return [tuple(n) for n in notes]


def test_a_hummed_take_keeps_only_the_notes_heard_not_those_the_tracker_took_back(tmp_path):
    """The pitch tracker announces a note early and may take it back (replaced from the
    same onset, or withdrawn): its note-off then comes at its own onset. Such a note was
    never heard; the saved take must not hold it (it was a zero-length note)."""
    from engine import parts as P
    from engine.pitch.live import HumTracker, heard
    from liveband.bench.sung_corpus import make_sung, specs

    spec = specs("dev")[14]  # a child's fast "la la" at 10 dB SNR: 3 early notes taken back
    assert spec.seed == 1014 and spec.sample_rate == SR
    clip = make_sung(spec)
    # the published weights: the fine-tuned ones take nothing back on this clip, and the
    # take-backs are what this test is about
    ht = HumTracker("pesto", input_rate=SR, weights="mir-1k_g7")
    rec = Recorder(tmp_path / "s", SR, poll_s=0.02, midi_every_s=0.02)
    rec.set_tempo(0, 120.0)
    rec.start()
    rec.ring.write(np.zeros((480, 2), np.float32), 0)
    events = []
    for i in range(0, len(clip.audio), SR // 200):
        for ev in ht.feed(clip.audio[i : i + SR // 200]):
            events.append(ev)
            # as the session logs a hummed note (liveband.session_inputs.mic_note)
            rec.add_event(ev.time, NOTE_ON if ev.on else NOTE_OFF, P.MELODY.channel, ev.pitch, 90 if ev.on else 0)
        if i % (SR // 10) == 0:
            time.sleep(0.005)  # let the writer write the take as it grows
    for ev in ht.finish():
        events.append(ev)
        rec.add_event(ev.time, NOTE_ON if ev.on else NOTE_OFF, P.MELODY.channel, ev.pitch, 90 if ev.on else 0)
    rec.stop()
    kept = heard(events)
    assert sum(ev.on for ev in events) > sum(ev.on for ev in kept) >= 10  # this clip has take-backs
    got = _melody_notes(rec.midi_path, P.MELODY.channel)
    want = []
    for ev in kept:
        if ev.on:
            want.append([ev.pitch, samples_to_ticks(ev.time, 0, SR, [TempoMark(0, 120.0)]), None])
        else:
            next(n for n in reversed(want) if n[0] == ev.pitch)[2] = samples_to_ticks(
                ev.time, 0, SR, [TempoMark(0, 120.0)]
            )
    assert got == [tuple(n) for n in want]
    assert all(off > on for _, on, off in got)


def test_a_take_back_after_the_writer_wrote_is_still_left_out(tmp_path):
    """The writer rewrites the file every midi_every_s: a note-on it has already written
    must still go when its take-back comes, early (held back while young) or late."""
    rec = Recorder(tmp_path / "s", SR, poll_s=0.02, midi_every_s=0.02)
    rec.start()
    rec.ring.write(np.zeros((480, 2), np.float32), 0)
    rec.add_event(1000, NOTE_ON, 3, 60, 90)
    rec.add_event(2000, NOTE_ON, 0, 40, 90)  # the band plays on meanwhile
    time.sleep(0.15)  # several writes
    rec.add_event(1000, NOTE_OFF, 3, 60)  # taken back 150 ms on
    rec.add_event(1000, NOTE_ON, 3, 62, 90)  # ... and replaced from the same onset
    time.sleep(0.2)
    assert _melody_notes(rec.midi_path, 3) == []  # young notes are held back
    time.sleep(0.5)  # older than the hold: in the file
    assert _melody_notes(rec.midi_path, 3) == [(62, 20, None)]
    rec.add_event(1000, NOTE_OFF, 3, 62)  # a late take-back
    rec.add_event(9000, NOTE_ON, 3, 64, 90)
    rec.add_event(12000, NOTE_OFF, 3, 64)
    rec.add_event(12000, NOTE_OFF, 0, 40)
    rec.stop()
    assert _melody_notes(rec.midi_path, 3) == [(64, 180, 240)]
    assert _melody_notes(rec.midi_path, 0) == [(40, 40, 240)]


class _Band:
    """Plays 480-frame blocks into a take's ring, each a level of its own, and knows what
    the take's WAV must hold: every block at its own time, silence where the ring
    refused one."""

    def __init__(self, rec):
        self.rec = rec
        self.played = []  # (block, taken by the ring)

    def play(self, blocks):
        for _ in range(blocks):
            k = len(self.played)
            block = np.full((480, 2), (k % 500 + 1) / 1000, np.float32)
            self.played.append((block, self.rec.ring.write(block, 480 * k)))

    def expected_pcm(self):
        audio = np.concatenate([b if taken else np.zeros_like(b) for b, taken in self.played])
        return np.frombuffer(pcm_bytes(audio), "<i2").reshape(-1, 2)

    @property
    def refused(self):
        return sum(not taken for _, taken in self.played)


def test_a_disk_that_fills_and_frees_again_leaves_the_take_in_time_with_silence_for_what_was_lost(
    tmp_path, monkeypatch
):
    """While the disk is full the writer keeps the frames it could not write and the ring
    holds the band's audio; what the ring had to refuse meanwhile becomes as much silence
    at its place. So the WAV holds every frame the band played at its own time (in step
    with the take's MIDI), the refused frames are counted, the failure stops being
    reported once writing works again, and what it cost is reported instead."""
    full = threading.Event()

    def pcm_bytes_or_no_space(x, bits=16):  # every append fails while the disk is full
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return pcm_bytes(x, bits)

    monkeypatch.setattr(engine.wav, "pcm_bytes", pcm_bytes_or_no_space)
    rec = Recorder(tmp_path / "s", SR, ring_seconds=0.5, poll_s=0.01)
    band = _Band(rec)
    rec.start()
    band.play(10)
    full.set()
    band.play(1)
    assert wait_for(lambda: rec.error is not None, 5)  # the writer holds that block now
    assert "No space left on device" in rec.error
    band.play(200)  # 2 s into a 0.5 s ring
    assert band.refused == 150
    full.clear()
    assert wait_for(lambda: rec.error is None, 5)
    band.play(10)
    rec.stop()
    assert rec.error is None
    pcm = read_wav(rec.wav_path)
    assert pcm.shape[0] == 221 * 480
    assert np.array_equal(pcm, band.expected_pcm())
    meta = json.loads((rec.folder / "session.json").read_text())
    assert meta["dropped_audio_frames"] == 150 * 480
    assert meta["seconds"] == pytest.approx(221 * 480 / SR)
    assert rec.pop_reports() == [
        "the take lost 1.5 s of audio while writing failed ([Errno 28] No space left on device); "
        "silence keeps the rest in time with its MIDI"
    ]
    assert rec.pop_reports() == []


def _stopped_on_a_full_disk(tmp_path, take_disk):
    """A take that wrote 0.2 s, then played 0.5 s its full disk had no room for, then was
    stopped: -> (recorder, band)."""
    rec = Recorder(tmp_path / "s", SR, ring_seconds=2.0, poll_s=0.01)
    band = _Band(rec)
    rec.start()
    band.play(20)
    assert wait_for(lambda: rec.ring.available() == 0, 5)
    take_disk.set()
    band.play(50)
    t0 = time.monotonic()
    assert rec.stop() is False  # not finished, and the owner is not kept waiting
    assert time.monotonic() - t0 < 5
    return rec, band


def test_a_stop_while_the_disk_is_full_finishes_the_take_once_there_is_room(tmp_path, take_disk):
    rec, band = _stopped_on_a_full_disk(tmp_path, take_disk)
    assert rec.error is not None and "No space left on device" in rec.error
    take_disk.clear()  # the player frees some space
    assert wait_for(lambda: rec.finished, 5)
    assert rec.error is None
    assert np.array_equal(read_wav(rec.wav_path), band.expected_pcm())
    assert json.loads((rec.folder / "session.json").read_text())["complete"] is True


def test_a_take_abandoned_on_a_full_disk_puts_the_rest_of_its_audio_elsewhere(tmp_path, take_disk):
    rec, band = _stopped_on_a_full_disk(tmp_path, take_disk)
    spill = tmp_path / "elsewhere"
    spill.mkdir()
    path = rec.abandon([tmp_path / "no-such-folder", spill])  # the app closes, the disk still full
    assert rec.finished and path is not None and path.parent == spill and path.suffix == ".wav"
    assert not list(spill.glob("*.part"))
    on_disk, rest = read_wav(rec.wav_path), read_wav(path)
    assert on_disk.shape[0] == 20 * 480  # its header says what it holds
    assert np.array_equal(np.concatenate([on_disk, rest]), band.expected_pcm())
    reports = rec.pop_reports()
    assert any(str(path) in r and "from 0.2 s on (0.5 s)" in r for r in reports), reports


def test_a_take_abandoned_with_nothing_left_to_write_spills_nothing(tmp_path):
    rec = Recorder(tmp_path / "s", SR, poll_s=0.01)
    _Band(rec).play(10)
    rec.start()
    assert rec.stop() is True
    assert rec.abandon([tmp_path]) is None and not list(tmp_path.glob("liveband-*"))


@pytest.fixture()
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only; else the test is skipped)."""
    if os.geteuid() != 0:
        pytest.skip("a disk that fills needs a tmpfs mount (root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for this test: {proc.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_real_disk_that_fills_mid_write_keeps_the_wav_whole_and_in_time(small_disk):
    """On a real file system a write that runs out of room lands part of its block (the
    file's last page has room for some) and leaves the rest in Python's buffer. None of
    that may stay in the WAV: once there is room again the file holds exactly the band's
    blocks at their times, silence for what the ring refused, and a header that says so."""
    # metadata only at stop, so the failure seen while full is the audio's own
    rec = Recorder(small_disk / "s", SR, ring_seconds=0.5, poll_s=0.01, flush_s=3600)
    band = _Band(rec)
    rec.start()
    try:
        band.play(100)
        assert wait_for(lambda: rec.ring.available() == 0, 5)
        filler = small_disk / "filler"
        with open(filler, "wb", buffering=0) as f:
            with pytest.raises(OSError):
                while True:
                    f.write(b"\0" * 4096)
        for _ in range(100):  # the WAV's last page takes a few blocks more
            band.play(1)
            if wait_for(lambda: rec.error is not None, 0.1):
                break
        assert rec.error is not None and "No space left on device" in rec.error
        band.play(100)  # 1 s into a 0.5 s ring
        assert band.refused > 0
        filler.unlink()
        assert wait_for(lambda: rec.error is None, 5)
        band.play(10)
    finally:
        rec.stop()  # closes the WAV, so the disk can be unmounted
    assert rec.error is None
    total = len(band.played) * 480
    assert rec.wav_path.stat().st_size == HEADER_BYTES + total * 4
    assert np.array_equal(read_wav(rec.wav_path), band.expected_pcm())
    meta = json.loads((rec.folder / "session.json").read_text())
    assert meta["dropped_audio_frames"] == band.refused * 480 and meta["complete"] is True
