"""A melody file as timed notes for "play along with a file" (ui.playalong sends them to
the session on its clock): the melody the band would accompany in that file, read by
engine.melody_file, placed on the 16th-step grid."""

from __future__ import annotations

import math
from pathlib import Path

from engine.melody_file import read_melody_midi
from models.tokens import STEPS_PER_BEAT

BAR_STEPS = 16  # the pickup keeps its place in a 4/4 bar
Note = tuple[float, float, int]  # (start step, length in steps, MIDI pitch)


def melody_steps(path: str | Path) -> list[Note]:
    """The melody of a MIDI file as (start_step, length_steps, pitch), sorted, in 16th
    steps (a quarter note = 4) from the bar of its first note; drums are never melody.

    ValueError (engine.melody_file.MelodyFileError) with one readable line for a missing,
    corrupt or note-less file."""
    melody = read_melody_midi(path)
    notes = sorted((n.start * STEPS_PER_BEAT, (n.end - n.start) * STEPS_PER_BEAT, n.pitch) for n in melody.notes)
    shift = math.floor(notes[0][0] / BAR_STEPS) * BAR_STEPS
    return [(start - shift, length, pitch) for start, length, pitch in notes]
