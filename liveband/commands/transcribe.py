"""`liveband transcribe INPUT.wav -o notes.mid [--tracker pesto|crepe] [--key "D minor"]`

Writes the hummed/sung melody as one MIDI track with the note times as heard
(unquantised: 480 ticks per beat at 120 BPM, so one tick is 1/960 s).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

from liveband.cli import UserError
from models.atomic import temp_beside, write_atomic

PROGRESS_EVERY_S = 5.0  # a progress line this often (wall clock) ...
PROGRESS_MIN_S = 30.0  # ... on files at least this long


def _cannot_write(out: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write {out}: {exc.strerror or exc}")


class _Progress:
    """A line on stderr every PROGRESS_EVERY_S while a file longer than PROGRESS_MIN_S
    is transcribed (the clock starts when the tracker is ready and the first second is done)."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self.t0: float | None = None  # when the tracker was ready and the first second done
        self.last = 0.0

    def __call__(self, done_s: float, total_s: float) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = self.last = now
        if total_s >= PROGRESS_MIN_S and done_s < total_s and now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            print(
                f"liveband transcribe: {self.src.name}: {done_s / total_s:4.0%} "
                f"({done_s:.0f} of {total_s:.0f} s, {now - self.t0:.0f} s so far)",
                file=sys.stderr,
                flush=True,
            )


def main(args) -> int:
    from engine.midi_export import notes_midi
    from engine.pitch import transcribe_wav
    from engine.pitch.weights import WeightsError

    src = Path(args.input)
    out = Path(args.output)
    if src.is_dir():
        raise UserError(f"{src} is a folder, not a WAV file")
    if not src.is_file():
        raise UserError(f"no such file: {src}")
    if out.suffix.lower() not in (".mid", ".midi"):
        raise UserError(f"the output must be a .mid file, got {out.name}")
    if out.is_dir():
        raise UserError(f"the output {out} is a folder; name a .mid file")
    if not out.parent.exists():
        raise UserError(f"output folder does not exist: {out.parent}")
    if out.exists() and os.path.samefile(out, src):
        raise UserError(f"the output {out} is the input file; name another .mid file")
    key, scale = None, "major"
    if getattr(args, "key", None):
        from engine.keyfind import parse_key

        try:
            key, scale = parse_key(args.key)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        temp_beside(out, ".part").unlink()  # an unwritable folder is told now, not after a long transcription
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    notices: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            notes = transcribe_wav(
                src, tracker=args.tracker, key=key, scale=scale, notices=notices, progress=_Progress(src)
            )
    except WeightsError as exc:
        raise UserError(str(exc)) from None
    try:
        write_atomic(out, notes_midi(notes), suffix=".part")
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    notices[:0] = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    dur = max((e for _, _, e, _ in notes), default=0.0)
    for msg in notices:
        print(f"liveband transcribe: note: {msg}", file=sys.stderr)
    if not notes:
        print(f"liveband transcribe: note: no hummed or sung notes were found in {src.name}", file=sys.stderr)
    print(f"{len(notes)} notes ({dur:.1f} s) -> {out}")
    return 0
