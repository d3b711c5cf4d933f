"""The band's parts: MIDI channel, default General MIDI program and mix defaults.

One table that the part renderer, the live mixer, the MIDI out/recorder and the UI all
read, so a part is on the same channel everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from engine.synth import DRUM_CHANNEL


@dataclass(frozen=True)
class Part:
    name: str  # short id used in configs, mute/solo and MIDI track names
    channel: int  # 0-15; GM percussion is channel 9
    program: int  # default GM program 0-127 (ignored on the drum channel)
    label: str  # what a musician reads in the UI
    volume: int = 100  # CC7 default

    def __post_init__(self) -> None:
        if not 0 <= self.channel < 16:
            raise ValueError(f"MIDI channel must be 0-15, got {self.channel}")
        if not 0 <= self.program < 128:
            raise ValueError(f"GM program must be 0-127, got {self.program}")


BASS: Final = Part("bass", 0, 33, "Bass (fingered)", 105)
KEYS: Final = Part("keys", 1, 0, "Keys (piano)", 90)
PAD: Final = Part("pad", 2, 89, "Pad (warm)", 70)
MELODY: Final = Part("melody", 3, 73, "Melody (flute)", 110)
DRUMS: Final = Part("drums", DRUM_CHANNEL, 0, "Drums (GM kit)", 95)

# The band the engine generates (the melody is the player's part).
BAND_PARTS: Final = (BASS, KEYS, PAD, DRUMS)
ALL_PARTS: Final = (BASS, KEYS, PAD, DRUMS, MELODY)
PARTS_BY_NAME: Final = {p.name: p for p in ALL_PARTS}

# Alternatives offered for the keys part (GM acoustic grand piano, electric piano 1).
KEYS_PROGRAMS: Final = (0, 4)


def part(name: str) -> Part:
    """The part called ``name``; ValueError naming the choices otherwise."""
    try:
        return PARTS_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown part {name!r}; choose one of {', '.join(PARTS_BY_NAME)}") from None
