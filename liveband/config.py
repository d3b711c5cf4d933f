"""Frozen, validated configuration. Every knob a user can set lives here once;
the CLI parser and the UI build these objects, the engine only reads them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.arranger import DEFAULT_SPLIT, SPLIT_RANGE  # noqa: F401  (the Chords tab's split box)
from engine.clock import DEFAULT_METER, DEFAULT_TEMPO, MAX_BPM, METERS, MIN_BPM, beat_steps  # noqa: F401
from engine.export import DEFAULT_LUFS  # noqa: F401  (the render's loudness: CLI, app, Sessions tab)
from engine.feel import FILLS, TIMES, Feel  # noqa: F401  (FILLS, TIMES: the UI's feel menus)
from engine.keyfind import key_name
from engine.mic_input import INPUT_GAIN_DB_RANGE
from engine.styles import DEFAULT_STYLE, get_style, style_names
from engine.sync import SYNC_MODES  # noqa: F401  (the Setup tab's sync menu)
from liveband.session_types import INPUT_MODES
from models.backends import BACKENDS
from models.sampling import DEFAULT_DENSITY, DEFAULT_HARMONY_FOLLOW, DEFAULT_TEMPERATURE, TEMPERATURE_RANGE
from models.tokens import bar_steps  # noqa: F401  (with beat_steps: the piano roll draws the band's grid)

# every key a player can fix, spelled as the session names it (its key signature's way)
KEY_NAMES: tuple[str, ...] = tuple(key_name(t, m) for m in ("major", "minor") for t in range(12))

# the band styles: shipped ones, then the user's style files (engine.styles)
STYLES = style_names()
STYLE_LABELS = {name: get_style(name).label for name in STYLES}  # what the style menu shows


def style_feel(name: str) -> dict:
    """A style's own feel, as ``EngineConfig``'s fields: what the feel controls show when
    the player picks the style. ValueError naming the styles when there is no such one."""
    st = get_style(name)
    return {"swing": st.swing, "fills": st.fills, "time_feel": st.time}


SYNC_DELAY_MS_RANGE = (0.0, 100.0)  # how far ahead of a received MIDI clock the band plays


DEFAULT_BLOCKSIZE = 256  # frames per audio callback: 5.3 ms at 48 kHz
# The band's inference backend, live and offline: onnxruntime steps the shipped model in
# about half torch's time and holds the 5 ms step budget (planning included) on a loaded
# 2-core CPU where torch does not (docs/live.md); without onnxruntime, or if the export
# fails, the backend fallback says so in one line and uses torch-cpu.
DEFAULT_BACKEND = "onnx-cpu"
DEFAULT_INPUT_MODE = INPUT_MODES[0]  # the computer keyboard: it needs no device


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 48000
    blocksize: int = DEFAULT_BLOCKSIZE
    output_device: str | int | None = None  # None: the system default
    input_device: str | int | None = None
    latency: str | float = "low"
    input_gain_db: float = 0.0  # microphone gain before the pitch tracker

    def __post_init__(self) -> None:
        if self.sample_rate not in (22050, 32000, 44100, 48000, 88200, 96000):
            raise ValueError(f"unsupported sample rate {self.sample_rate} Hz")
        if not 32 <= self.blocksize <= 4096 or self.blocksize & (self.blocksize - 1):
            raise ValueError(f"block size must be a power of two in 32-4096, got {self.blocksize}")
        lo, hi = INPUT_GAIN_DB_RANGE
        if not lo <= self.input_gain_db <= hi:
            raise ValueError(f"input gain must be {lo:g}..+{hi:g} dB, got {self.input_gain_db}")

    @property
    def block_ms(self) -> float:
        return 1000.0 * self.blocksize / self.sample_rate


# The band's controls: each default and range once. EngineConfig, the command line, the
# app's settings and knobs, presets and MIDI learn read them here. The engine and the
# sampler, which refuse values outside and play when nobody chose (a render's
# engine.offline.RenderSettings), own what they enforce or use below this room, imported
# above: TEMPO_RANGE's ends and DEFAULT_TEMPO/DEFAULT_METER (engine.clock), DEFAULT_STYLE
# (engine.styles), TEMPERATURE_RANGE ("creativity", 0.05-2.0), DEFAULT_TEMPERATURE,
# DEFAULT_DENSITY and DEFAULT_HARMONY_FOLLOW (models.sampling).
TEMPO_RANGE = (MIN_BPM, MAX_BPM)  # BPM
UNIT_RANGE = (0.0, 1.0)  # density, harmony-follow, feel amounts, volumes
COUNT_IN_RANGE = (0, 4)  # bars
DEFAULT_COUNT_IN_BARS = 1


@dataclass(frozen=True)
class EngineConfig:
    tempo: float = DEFAULT_TEMPO  # quarter notes per minute
    meter: str = DEFAULT_METER
    count_in_bars: int = DEFAULT_COUNT_IN_BARS
    style: str = DEFAULT_STYLE
    temperature: float = DEFAULT_TEMPERATURE  # "creativity"
    density: float = DEFAULT_DENSITY
    harmony_follow: float = DEFAULT_HARMONY_FOLLOW
    chunk_steps: int = 1  # 16th steps generated per worker wake-up (1..one beat)
    lead_ms: float = 50.0  # commit each 16th this long before it sounds (worker stalls + a step)
    backend: str = DEFAULT_BACKEND
    seed: int = 0
    checkpoint: str | None = None  # None: the shipped default
    key: str | None = None  # a key the player fixes ("D minor"); None: follow the playing
    swing: float | None = None  # 0 straight .. 1 triplet; None: the style's
    fills: str | None = None  # off, phrase, more; None: the style's
    time_feel: str | None = None  # normal, half, double (the drummer); None: the style's
    humanise: float = 0.0  # timing and velocity spread, 0-1, seeded by ``seed``

    def __post_init__(self) -> None:
        if not TEMPO_RANGE[0] <= self.tempo <= TEMPO_RANGE[1]:
            raise ValueError(f"tempo must be {TEMPO_RANGE[0]:g}-{TEMPO_RANGE[1]:g} BPM, got {self.tempo}")
        if self.meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {self.meter!r}")
        if self.style not in style_names():
            raise ValueError(f"style must be one of {', '.join(style_names())}, got {self.style!r}")
        self.feel  # validates swing, fills, time and humanise
        if not COUNT_IN_RANGE[0] <= self.count_in_bars <= COUNT_IN_RANGE[1]:
            raise ValueError(f"count-in must be {COUNT_IN_RANGE[0]}-{COUNT_IN_RANGE[1]} bars")
        if not TEMPERATURE_RANGE[0] <= self.temperature <= TEMPERATURE_RANGE[1]:
            raise ValueError(
                f"temperature must be {TEMPERATURE_RANGE[0]}-{TEMPERATURE_RANGE[1]}, got {self.temperature}"
            )
        for name in ("density", "harmony_follow"):
            v = getattr(self, name)
            if not UNIT_RANGE[0] <= v <= UNIT_RANGE[1]:
                raise ValueError(f"{name} must be 0-1, got {v}")
        if not 1 <= self.chunk_steps <= 16:
            raise ValueError("chunk must be 1-16 steps")
        if not 5.0 <= self.lead_ms <= 2000.0:
            raise ValueError(f"commit lead must be 5-2000 ms, got {self.lead_ms}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.key is not None:
            from engine.keyfind import key_name, parse_key

            object.__setattr__(self, "key", key_name(*parse_key(self.key)))  # canonical spelling

    @property
    def feel(self) -> Feel:
        return Feel(self.swing, self.fills, self.time_feel, self.humanise)

    def with_(self, **changes) -> "EngineConfig":
        return replace(self, **changes)
