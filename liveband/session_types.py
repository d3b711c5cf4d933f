"""The session's plain values: what the UI reads (``SessionSnapshot``, ``PartState``), the
one error it raises for the player to fix, and the names it accepts."""

from __future__ import annotations

from dataclasses import dataclass

# the band's parts and the player's own ("melody"): each a mixer strip
PART_NAMES = ("bass", "keys", "pad", "drums", "melody")
INPUT_MODES = ("keyboard", "midi", "mic")
VIRTUAL_IN_NAME = "LiveBand in"
VIRTUAL_OUT_NAME = "LiveBand band"


class SessionError(ValueError):
    """A problem the user must fix before a session can exist (e.g. a broken SoundFont)."""


@dataclass(frozen=True)
class PartState:
    mute: bool
    solo: bool
    volume: float
    program: int
    through: bool = True  # the player's part: sounded here (off when a hardware synth plays it)


@dataclass(frozen=True)
class SessionSnapshot:
    """Cheap, immutable, built for the UI timer. Thread: any."""

    playing: bool
    counting_in: bool
    tempo: float
    meter: str
    style: str
    input_mode: str
    step: float
    chord: str
    key: str
    input_level_db: float
    hummed_pitch: float | None
    audio_latency_ms: float
    xruns: int
    lead_ms: float
    late_steps: int
    cpu_percent: float
    backend: str
    recording: bool
    notices: tuple[str, ...]
    parts: dict[str, PartState]
    confirmation: str = ""  # a brief success to show for a moment ("take saved"), not a problem
    bar: int = 0  # the bar heard, 1.. (0: stopped or counting in)
    section: str = ""  # the looped chart's section there ("" none)
