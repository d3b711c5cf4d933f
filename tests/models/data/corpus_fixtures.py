"""Writers for tiny corpus files in the exact on-disk formats of POP909, Nottingham and JSB,
so loader and evaluation tests run on a fresh machine without ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import mido

TPQ = 480
SEC_PER_BEAT = 0.5  # 120 BPM


def _track(
    name: str | None,
    channel: int,
    notes: list[tuple[int, float, float]],
    tpq: int,
    per_beat_ticks: float,
    head: list | None = None,
) -> mido.MidiTrack:
    """notes: (pitch, start_beat, end_beat) -> a track with absolute times turned into deltas."""
    tr = mido.MidiTrack()
    if name is not None:
        tr.append(mido.MetaMessage("track_name", name=name, time=0))
    for msg in head or []:
        tr.append(msg)
    events = []
    for p, s, e in notes:
        events.append((round(s * per_beat_ticks), 1, mido.Message("note_on", channel=channel, note=p, velocity=90)))
        events.append((round(e * per_beat_ticks), 0, mido.Message("note_off", channel=channel, note=p, velocity=0)))
    events.sort(key=lambda x: (x[0], x[1]))
    now = 0
    for t, _, msg in events:
        tr.append(msg.copy(time=t - now))
        now = t
    tr.append(mido.MetaMessage("end_of_track", time=0))
    return tr


def write_pop909_song(
    folder: Path,
    num: str,
    melody: list[tuple[int, float, float]],
    piano: list[tuple[int, float, float]],
    chords: list[tuple[float, float, str]],
    beats: int = 16,
    beats_per_bar: int = 4,
    key: str = "C:maj",
    with_melody_track: bool = True,
) -> Path:
    """One POP909-format song folder at 120 BPM; note/chord times are in beats (beat 0 at 0.0 s)."""
    d = folder / num
    d.mkdir(parents=True, exist_ok=True)
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=int(SEC_PER_BEAT * 1e6), time=0),
            mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=4, time=0),
            mido.MetaMessage("end_of_track", time=0),
        ]
    )
    mid.tracks.append(conductor)
    if with_melody_track:
        mid.tracks.append(_track("MELODY", 0, melody, TPQ, TPQ))
    mid.tracks.append(_track("BRIDGE", 1, [], TPQ, TPQ))
    mid.tracks.append(_track("PIANO", 2, piano, TPQ, TPQ))
    mid.save(d / f"{num}.mid")
    # POP909 flags every other bar of a triple-time song as the downbeat (6-beat spacing)
    db_every = 6 if beats_per_bar == 3 else beats_per_bar
    lines = [f"{i * SEC_PER_BEAT} {float(i % 2 == 0)} {float(i % db_every == 0)}" for i in range(beats)]
    (d / "beat_midi.txt").write_text("\n".join(lines) + "\n")
    (d / "chord_midi.txt").write_text(
        "".join(f"{s * SEC_PER_BEAT:.6f}\t{e * SEC_PER_BEAT:.6f}\t{lab}\n" for s, e, lab in chords)
    )
    (d / "key_audio.txt").write_text(f"0.0\t{beats * SEC_PER_BEAT}\t{key}\n")
    return d


# A two-bar 4/4 song: the hand-worked expectations in the tests refer to these notes.
POP_MELODY = [(64, 0, 1), (67, 1, 2.5), (65, 2, 3), (72, 4, 8)]  # 67 is cut by 65 at beat 2
POP_PIANO = [
    (48, 0, 4),
    (52, 0, 2),
    (55, 0, 2),
    (70, 0, 1),
    (60, 2, 4),  # 70 is above the melody
    (43, 4, 8),
    (59, 4, 6),
    (62, 4.02, 6),
    (67, 6, 8),
]  # 62 starts a hair late: snaps
POP_CHORDS = [(0, 4, "C:maj"), (4, 6, "G:7/b7"), (6, 8, "E:min7")]


def write_pop909_folder(folder: Path, nums: tuple[str, ...] = ("001",)) -> Path:
    for n in nums:
        write_pop909_song(folder, n, POP_MELODY, POP_PIANO, POP_CHORDS, beats=8)
    return folder


def write_nottingham_tune(
    path: Path,
    melody: list[tuple[int, float, float]],
    chords: list[tuple[int, float, float]],
    numerator: int = 3,
    denominator: int = 4,
    tpq: int = 1024,
) -> Path:
    """A Nottingham-format file: type 1, two unnamed channel-0 tracks, key + time signature."""

    def head() -> list[mido.MetaMessage]:
        return [
            mido.MetaMessage("key_signature", key="G", time=0),
            mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0),
        ]

    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.append(_track("", 0, melody, tpq, tpq, head()))
    mid.tracks.append(_track("", 0, chords, tpq, tpq, head()))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


# 3/4, a one-beat pickup then two bars: G major, then D7 (times in quarter notes).
NOTT_MELODY = [(74, 2, 3), (79, 3, 4), (78, 4, 4.5), (76, 4.5, 5), (74, 5, 6), (72, 6, 8), (71, 8, 9)]
NOTT_CHORDS = [(43, 3, 6), (47, 3, 6), (50, 3, 6), (38, 6, 9), (42, 6, 9), (45, 6, 9), (48, 6, 9)]


def write_jsb(path: Path, splits: dict[str, list]) -> Path:
    path.write_text(json.dumps(splits))
    return path


# Two steps of each chord; the soprano re-strikes 67 at step 2, which the format cannot show.
JSB_CHORALE = [
    [67, 64, 60, 48],
    [67, 64, 60, 48],
    [67, 62, 59, 43],
    [67, 62, 59, 43],
    [69, 60, 57, 45],
    [-1, 60, 57, 45],
    [72, 64, 55, 48],
    [72, 64, 55, 48],
]
