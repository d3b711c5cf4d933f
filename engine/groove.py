"""The drummer: rule-based GM drum patterns per style and meter, with fills and intensity.

No drum data ships with LiveBand, so drums come from patterns rather than the model. The
model still steers them: ``intensity`` (0..1) follows the band's recent note density and
the player's density control, and chooses between a sparse, a normal and a busy
variant of each pattern. Fills play in the last beat of every 4th bar and the last two
beats of every 8th bar, with a crash on the following downbeat. Chorales have no drums;
folk is a light kick and rim pattern that only comes in at moderate intensity.

Patterns are strings on the 16th grid, one character per step: ``x`` hit, ``o`` accent,
``.`` nothing, so they read like a drum chart.
"""
from __future__ import annotations

import numpy as np

# GM percussion keys
KICK, SIDE_STICK, SNARE, CLOSED_HAT, OPEN_HAT, PEDAL_HAT = 36, 37, 38, 42, 46, 44
CRASH, RIDE, TAMBOURINE = 49, 51, 54
TOM_HIGH, TOM_MID, TOM_LOW, TOM_FLOOR = 50, 47, 45, 41

# (style, meter) -> {drum: (sparse, normal, busy)}
_PATTERNS: dict[tuple[str, str], dict[int, tuple[str, str, str]]] = {
    ("pop", "4/4"): {
        KICK:       ("o.......x.......", "o.......x.x.....", "o.....x.x.x...x."),
        SNARE:      ("....o.......o...", "....o.......o...", "....o.......o..x"),
        CLOSED_HAT: ("x...x...x...x...", "x.x.x.x.x.x.x.x.", "xxxxxxxxxxxxxxxx"),
    },
    ("pop", "3/4"): {
        KICK:       ("o...........", "o.......x...", "o.....x.x..."),
        SNARE:      ("....x...x...", "....o...o...", "....o...o..x"),
        CLOSED_HAT: ("x...x...x...", "x.x.x.x.x.x.", "xxxxxxxxxxxx"),
    },
    ("pop", "6/8"): {
        KICK:       ("o...........", "o.........x.", "o...x.....x."),
        SNARE:      ("......o.....", "......o.....", "......o...x."),
        CLOSED_HAT: ("x.....x.....", "x.x.x.x.x.x.", "x.x.x.x.x.xx"),
    },
    ("folk", "4/4"): {
        KICK:       ("o...............", "o.......x.......", "o.......x.......",),
        SIDE_STICK: ("................", "....x.......x...", "....x.......x..."),
        TAMBOURINE: ("................", "................", "..x...x...x...x."),
    },
    ("folk", "3/4"): {
        KICK:       ("o...........", "o...........", "o...........",),
        SIDE_STICK: ("............", "....x...x...", "....x...x..."),
        TAMBOURINE: ("............", "............", "..x...x...x."),
    },
    ("folk", "6/8"): {
        KICK:       ("o...........", "o.....x.....", "o.....x.....",),
        SIDE_STICK: ("............", "....x.....x.", "....x.....x."),
        TAMBOURINE: ("............", "............", "x.x.x.x.x.x."),
    },
}

# the fill replaces the pattern in its last steps: descending toms in 16ths/8ths
_FILL_TOMS = (TOM_HIGH, TOM_HIGH, TOM_MID, TOM_MID, TOM_LOW, TOM_LOW, TOM_FLOOR, TOM_FLOOR)


def _vel(ch: str) -> int:
    return 112 if ch == "o" else 92


class Groove:
    """Drum hits per step. Thread: the generator worker (one caller).

    ``hits(step, ...)`` returns ``[(gm_key, velocity), ...]`` for that step; velocities
    are scaled by intensity and get a small seeded humanisation.
    """

    def __init__(self, style: str, meter: str, seed: int = 0) -> None:
        self.style = style
        self.meter = meter
        self.pattern = _PATTERNS.get((style, meter), {})
        n = {"4/4": 16, "3/4": 12, "6/8": 12}[meter]
        self.bar_steps = n
        self.rng = np.random.default_rng(seed + 7919)   # its own stream, independent of the sampler

    @property
    def silent(self) -> bool:
        return not self.pattern

    def level(self, intensity: float) -> int:
        """0 sparse, 1 normal, 2 busy; -1 tacet (folk at low intensity)."""
        if self.style == "folk" and intensity < 0.25:
            return -1
        return 0 if intensity < 0.35 else (1 if intensity < 0.72 else 2)

    def fill_length(self, bar: int) -> int:
        """Steps of fill at the end of ``bar`` (0-based bar index)."""
        if bar < 0 or self.silent or self.style == "folk":
            return 0
        beat = 6 if self.meter == "6/8" else 4
        if (bar + 1) % 8 == 0:
            return 2 * beat
        if (bar + 1) % 4 == 0:
            return beat
        return 0

    def hits(self, step: int, intensity: float) -> list[tuple[int, int]]:
        if self.silent or step < 0:
            return []
        bar, pos = divmod(step, self.bar_steps)
        out: list[tuple[int, int]] = []
        if pos == 0 and bar > 0 and bar % 4 == 0 and self.style == "pop" and intensity >= 0.35:
            out.append((CRASH, 100))
        fill = self.fill_length(bar)
        lvl = self.level(intensity)
        if lvl < 0:
            return out
        if fill and pos >= self.bar_steps - fill:
            i = pos - (self.bar_steps - fill)
            every = 1 if lvl == 2 else 2   # 16ths when busy, 8ths otherwise
            if i % every == 0:
                tom = _FILL_TOMS[min(len(_FILL_TOMS) - 1, i * len(_FILL_TOMS) // fill)]
                out.append((tom, 88 + 4 * (i * 4 // fill)))
            if i == 0:
                out.append((KICK, 100))
        else:
            for drum, variants in self.pattern.items():
                ch = variants[lvl][pos]
                if ch != ".":
                    out.append((drum, _vel(ch)))
        scale = 0.75 + 0.3 * intensity
        human = self.rng.integers(-6, 7, size=max(1, len(out)))
        return [(k, int(min(127, max(1, v * scale + h)))) for (k, v), h in zip(out, human)]
