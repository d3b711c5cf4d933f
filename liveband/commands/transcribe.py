"""`liveband transcribe INPUT.wav -o notes.mid [--tracker pesto|crepe] [--key "D minor"]`

Writes the hummed/sung melody as one MIDI track with the note times as heard
(unquantised: 480 ticks per beat at 120 BPM, so one tick is 1/960 s).
"""
from __future__ import annotations

import sys
from pathlib import Path

from liveband.cli import UserError

TICKS_PER_BEAT = 480
TEMPO_US = 500000      # 120 BPM: seconds * 960 = ticks


def write_midi(notes: list[tuple[int, float, float, int]], path: Path) -> None:
    """notes: (pitch, start s, end s, velocity) -> a type-1 MIDI file with one track."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    track.append(mido.MetaMessage("track_name", name="hummed melody", time=0))
    scale = TICKS_PER_BEAT * 1e6 / TEMPO_US
    evs = []
    for pitch, start, end, vel in notes:
        on = int(round(start * scale))
        off = max(on + 1, int(round(end * scale)))
        evs.append((on, 1, pitch, max(1, min(127, vel))))
        evs.append((off, 0, pitch, 0))
    evs.sort(key=lambda e: (e[0], e[1]))     # note-offs before note-ons at the same tick
    now = 0
    for tick, is_on, pitch, vel in evs:
        track.append(mido.Message("note_on" if is_on else "note_off", note=pitch, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    tmp = path.with_name(path.name + ".part")
    mid.save(str(tmp))
    tmp.replace(path)


def main(args) -> int:
    from engine.pitch import transcribe_wav
    from engine.pitch.weights import WeightsError

    src = Path(args.input)
    out = Path(args.output)
    if not src.is_file():
        raise UserError(f"no such file: {src}")
    if out.suffix.lower() not in (".mid", ".midi"):
        raise UserError(f"the output must be a .mid file, got {out.name}")
    if not out.parent.exists():
        raise UserError(f"output folder does not exist: {out.parent}")
    key, scale = None, "major"
    if getattr(args, "key", None):
        from engine.keyfind import parse_key
        try:
            key, scale = parse_key(args.key)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    notices: list[str] = []
    try:
        notes = transcribe_wav(src, tracker=args.tracker, key=key, scale=scale, notices=notices)
    except WeightsError as exc:
        raise UserError(str(exc)) from None
    write_midi(notes, out)
    dur = max((e for _, _, e, _ in notes), default=0.0)
    for msg in notices:
        print(f"liveband transcribe: note: {msg}", file=sys.stderr)
    if not notes:
        print(f"liveband transcribe: note: no hummed or sung notes were found in {src.name}", file=sys.stderr)
    print(f"{len(notes)} notes ({dur:.1f} s) -> {out}")
    return 0
