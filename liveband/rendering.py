"""What both offline render paths share, the `render` command and the app's Render: the
band's tempo and meter for a melody file, and the model it is rendered with. One rule
for both, so a file renders the same from the app as from the command line."""

from __future__ import annotations

from typing import Callable

from engine.melody_file import Melody
from liveband.config import DEFAULT_METER, DEFAULT_TEMPO, TEMPO_RANGE
from liveband.errors import UserError
from models.contract import Accompanist

# Offline the model's steps are on the render's critical path and onnxruntime steps the
# shipped model faster than torch (same tokens on the bench tune); without onnxruntime
# the backend fallback says so in one line and uses torch-cpu.
DEFAULT_BACKEND = "onnx-cpu"
# a recording has no beat grid: its seconds are read as beats at this tempo
RECORDING_TEMPO = DEFAULT_TEMPO


def band_timing(
    melody: Melody, tempo: float | None = None, meter: str | None = None, say: Callable[[str], None] = print
) -> tuple[float, str]:
    """The tempo and meter the band plays a melody file at: the ones given, else the
    file's (a tempo outside the band's range folded by octaves), else 100 BPM in 4/4.
    ``say`` gets a line for each thing of the file the band does not follow."""
    lo, hi = TEMPO_RANGE
    bpm = tempo if tempo is not None else (melody.tempo or RECORDING_TEMPO)
    if tempo is None and melody.tempo is not None and not lo <= bpm <= hi:
        # half/double time
        while bpm > hi:
            bpm /= 2
        while bpm < lo:
            bpm *= 2
        say(f"the file's tempo {melody.tempo:.1f} BPM is outside {lo:g}-{hi:g}; playing at {bpm:.1f} BPM")
    chosen = meter or melody.meter or DEFAULT_METER
    if meter is None and melody.source_meter and melody.meter is None:
        say(f"the file's meter {melody.source_meter} is not supported; playing in {chosen}")
    if melody.tempo_changes and tempo is None:
        say(f"the file changes tempo {melody.tempo_changes} time(s); the band keeps {bpm:.1f} BPM")
    return bpm, chosen


def open_band(
    melody: Melody, backend: str | None = None, checkpoint: str | None = None, say: Callable[[str], None] = print
) -> tuple[Melody, Accompanist, str]:
    """The model on ``backend`` (default onnx-cpu, with the usual fallback; default model:
    the shipped offline teacher, see ``models.runtime.default_offline_checkpoint``) and the
    melody moved by octaves into the model's range. Returns (melody, accompanist, backend used);
    a missing or broken checkpoint raises UserError."""
    from engine.backends import open_accompanist
    from engine.melody_file import DEFAULT_MELODY_RANGE, fit_to_range

    if checkpoint is None:
        # a file's whole melody is known: the offline teacher, which hears it a beat ahead
        from models.runtime import default_offline_checkpoint

        checkpoint = str(default_offline_checkpoint())
    try:
        acc, used = open_accompanist(backend or DEFAULT_BACKEND, checkpoint, notify=say)
    except FileNotFoundError as exc:
        raise UserError(f"model checkpoint not found: {exc.filename or exc}") from None
    except RuntimeError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    lo, hi = getattr(acc, "melody_range", DEFAULT_MELODY_RANGE)
    melody, shift = fit_to_range(melody, (lo, hi))
    if shift:
        octaves = abs(shift) // 12
        say(
            f"melody transposed {'up' if shift > 0 else 'down'} {octaves} octave{'s' if octaves > 1 else ''} "
            f"into the model's range (MIDI {lo}-{hi})"
        )
    return melody, acc, used
