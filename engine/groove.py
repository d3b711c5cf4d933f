"""The drummer: GM drum patterns per style and meter (``engine.styles``), with fills,
half/double time and intensity.

No drum data ships with LiveBand, so drums come from patterns rather than the model. The
model still steers them: ``intensity`` (0..1) follows the band's recent note density and
the player's density control, and chooses between a sparse, a normal and a busy
variant of each pattern; below the style's ``drums_from`` the drums are tacet. Fills
(``phrase``) play in the last beat of every 4th bar and the last two beats of every 8th
bar (``more``: every 2nd and 4th bar), with a crash on the next 4-bar phrase's downbeat
when the style asks for one.

Patterns are strings on the 16th grid, one character per step: ``x`` hit, ``o`` accent,
``g`` ghost, ``.`` nothing, so they read like a drum chart.
"""

from __future__ import annotations

import numpy as np

from engine.clock import beat_steps
from engine.styles import Style, get_style
from models.tokens import bar_steps

# GM percussion keys
KICK, SIDE_STICK, SNARE, CLOSED_HAT, OPEN_HAT, PEDAL_HAT = 36, 37, 38, 42, 46, 44
CRASH, RIDE, TAMBOURINE = 49, 51, 54
TOM_HIGH, TOM_MID, TOM_LOW, TOM_FLOOR = 50, 47, 45, 41

# the fill replaces the pattern in its last steps: descending toms in 16ths/8ths
_FILL_TOMS = (TOM_HIGH, TOM_HIGH, TOM_MID, TOM_MID, TOM_LOW, TOM_LOW, TOM_FLOOR, TOM_FLOOR)
_VELOCITY = {"o": 112, "x": 92, "g": 48}


class Groove:
    """Drum hits per step. Thread: the generator worker (one caller).

    ``hits(step, ...)`` returns ``[(gm_key, velocity), ...]`` for that step; velocities
    are scaled by intensity and get a small seeded humanisation. ``fills`` and ``time``
    default to the style's.
    """

    def __init__(
        self, style: str | Style, meter: str, seed: int = 0, fills: str | None = None, time: str | None = None
    ) -> None:
        self.style = get_style(style)
        self.meter = meter
        self.pattern = self.style.drum_pattern(meter)
        self.bar_steps = bar_steps(meter)
        self.fills = fills or self.style.fills
        self.time = time or self.style.time
        self.rng = np.random.default_rng(seed + 7919)  # its own stream, independent of the sampler

    @property
    def silent(self) -> bool:
        return not self.pattern

    def level(self, intensity: float) -> int:
        """0 sparse, 1 normal, 2 busy; -1 tacet (below the style's drums_from)."""
        if intensity < self.style.drums_from:
            return -1
        return 0 if intensity < 0.35 else (1 if intensity < 0.72 else 2)

    def fill_length(self, bar: int) -> int:
        """Steps of fill at the end of ``bar`` (0-based bar index)."""
        if bar < 0 or self.silent or self.fills == "off":
            return 0
        beat = beat_steps(self.meter)
        short, long_ = (2, 4) if self.fills == "more" else (4, 8)
        if (bar + 1) % long_ == 0:
            return 2 * beat
        if (bar + 1) % short == 0:
            return beat
        return 0

    def _pattern_pos(self, bar: int, pos: int) -> int | None:
        """The pattern step played at ``pos`` of ``bar`` (None: nothing, half/double time
        drop the 16ths between)."""
        n = self.bar_steps
        if self.time == "half":
            k = (bar % 2) * n + pos
            return None if k % 2 else k // 2
        if self.time == "double":
            return (2 * pos) % n
        return pos

    def hits(self, step: int, intensity: float) -> list[tuple[int, int]]:
        if self.silent or step < 0:
            return []
        bar, pos = divmod(step, self.bar_steps)
        out: list[tuple[int, int]] = []
        if (
            pos == 0
            and bar > 0
            and bar % 4 == 0
            and self.style.crash
            and intensity >= 0.35
            and self.fill_length(bar - 1)
        ):
            out.append((CRASH, 100))
        fill = self.fill_length(bar)
        lvl = self.level(intensity)
        if lvl < 0:
            return out
        if fill and pos >= self.bar_steps - fill:
            i = pos - (self.bar_steps - fill)
            every = 1 if lvl == 2 else 2  # 16ths when busy, 8ths otherwise
            if i % every == 0:
                tom = _FILL_TOMS[min(len(_FILL_TOMS) - 1, i * len(_FILL_TOMS) // fill)]
                out.append((tom, 88 + 4 * (i * 4 // fill)))
            if i == 0:
                out.append((KICK, 100))
        else:
            p = self._pattern_pos(bar, pos)
            if p is not None:
                for drum, variants in self.pattern.items():
                    ch = variants[lvl][p]
                    if ch != ".":
                        out.append((drum, _VELOCITY[ch]))
        scale = 0.75 + 0.3 * intensity
        human = self.rng.integers(-6, 7, size=max(1, len(out)))
        return [(k, int(min(127, max(1, v * scale + h)))) for (k, v), h in zip(out, human)]
