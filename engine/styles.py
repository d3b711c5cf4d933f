"""Band styles as data: each style is one TOML file (``engine/style_files/*.toml``, plus any in
the user's styles folder, ``user_styles_dir()``), read here into a validated ``Style``.

A style is a groove family laid over the model's harmony: drum patterns per meter with
sparse/normal/busy variants, a bass rhythm and a comping rhythm that re-strike what the
model chose (``engine.renderer``), GM programs per part, which parts play, feel defaults
(swing, fills, half/double time) and the model style it conditions on (the model knows
only ``models.tokens.STYLES``). Patterns are strings on the 16th grid, one character per
step, so they read like a chart; a meter a style does not write is cut or tiled from its
4/4 pattern (12/8 from its 6/8 one). The file format is documented in ``docs/engine.md``.

A malformed user file is skipped with one line naming it (``StyleBook.problems``); a
malformed shipped file is a bug and raises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import tomllib

from engine.clock import METERS
from models.tokens import STYLES as MODEL_STYLES
from models.tokens import bar_steps

BUILTIN_DIR: Final = Path(__file__).resolve().parent / "style_files"

# GM percussion keys by the names style files use
DRUM_KEYS: Final = {
    "kick": 36,
    "side_stick": 37,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "floor_tom": 41,
    "closed_hat": 42,
    "low_tom": 45,
    "pedal_hat": 44,
    "open_hat": 46,
    "mid_tom": 47,
    "high_tom": 50,
    "crash": 49,
    "ride": 51,
    "ride_bell": 53,
    "tambourine": 54,
    "cowbell": 56,
    "mute_conga": 62,
    "high_conga": 63,
    "low_conga": 64,
    "cabasa": 69,
    "shaker": 70,
    "claves": 75,
}
BAND_PART_NAMES: Final = ("bass", "keys", "pad", "drums")
FILLS: Final = ("off", "phrase", "more")
TIMES: Final = ("normal", "half", "double")
DRUM_CHARS: Final = frozenset(".xog")  # nothing, hit, accent, ghost
BASS_CHARS: Final = frozenset(".-xr58w")  # release, hold, model's note, root, fifth, octave, walk
COMP_CHARS: Final = frozenset(".-xo")  # release, hold, strike, accented strike


class StyleError(ValueError):
    """A style file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Style:
    name: str
    label: str
    model: str  # the model style it conditions on
    parts: tuple[str, ...] = BAND_PART_NAMES  # band parts that play
    programs: dict[str, int] = field(default_factory=dict)
    swing: float = 0.0  # 0 straight .. 1 triplet feel
    fills: str = "phrase"
    time: str = "normal"
    crash: bool = False  # crash on the downbeat after a phrase's fill
    drums_from: float = 0.0  # drums are tacet below this intensity
    # meter -> {gm key: (sparse, normal, busy)}; {} = no drums
    drums: dict[str, dict[int, tuple[str, str, str]]] = field(default_factory=dict)
    bass: dict[str, str] = field(default_factory=dict)  # meter -> rhythm; none: the model's
    comp: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def drum_pattern(self, meter: str) -> dict[int, tuple[str, str, str]]:
        if not self.drums:
            return {}
        if meter in self.drums:
            return self.drums[meter]
        src = self.drums[_nearest(self.drums, meter)]
        return {k: tuple(_fit(v, bar_steps(meter)) for v in vs) for k, vs in src.items()}  # type: ignore[misc]

    def bass_rhythm(self, meter: str) -> str | None:
        return _rhythm(self.bass, meter)

    def comp_rhythm(self, meter: str) -> str | None:
        return _rhythm(self.comp, meter)


def _fit(pattern: str, n: int) -> str:
    """A pattern cut or tiled to ``n`` steps (a meter the style does not write)."""
    return (pattern * (n // len(pattern) + 1))[:n]


def _nearest(table: dict, meter: str) -> str:
    """The written meter a missing one is made from: 12/8 from 6/8 (two of its bars, the
    same dotted-quarter pulse), else from 4/4, else the first written."""
    for m in ("6/8", "4/4") if meter == "12/8" else ("4/4",):
        if m in table:
            return m
    return next(iter(table))


def _rhythm(table: dict[str, str], meter: str) -> str | None:
    if not table:
        return None
    if meter in table:
        return table[meter]
    return _fit(table[_nearest(table, meter)], bar_steps(meter))


def _check_pattern(where: str, text: object, meter: str, chars: frozenset[str]) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{where}: a pattern must be a string")
    n = bar_steps(meter)
    if len(text) != n:
        raise ValueError(f"{where}: {meter} needs {n} steps, got {len(text)} ({text!r})")
    bad = set(text) - chars
    if bad:
        raise ValueError(f"{where}: unknown step character {sorted(bad)[0]!r} (use {' '.join(sorted(chars))})")
    return text


def _fraction(feel: dict, key: str, meaning: str) -> float:
    """A [feel] number in 0..1 (a TOML boolean is no number; nan and 1e308 are out of range)."""
    value = feel.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"[feel] {key} = {value!r}: must be {meaning}")
    return float(value)


def _meter_table(data: object, where: str, chars: frozenset[str]) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f'[{where}] must be a table of meter = "pattern"')
    out = {}
    for meter, text in data.items():
        if meter not in METERS:
            raise ValueError(f"[{where}]: unknown meter {meter!r} (use {', '.join(METERS)})")
        out[meter] = _check_pattern(f"[{where}] {meter}", text, meter, chars)
    return out


def parse_style(data: dict, name: str, source: str = "") -> Style:
    """A ``Style`` from a TOML file's table; ValueError saying what is wrong."""
    known = {"name", "label", "model", "parts", "programs", "feel", "drums", "bass", "comp"}
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"unknown key {extra[0]!r} (keys: {', '.join(sorted(known))})")
    name = str(data.get("name", name)).strip().lower()
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"style name {name!r} must be letters, digits, - or _")
    model = data.get("model")
    if model not in MODEL_STYLES:
        raise ValueError(
            f"model = {model!r}: the model style it conditions on must be one of {', '.join(MODEL_STYLES)}"
        )
    parts = tuple(data.get("parts", BAND_PART_NAMES))
    for p in parts:
        if p not in BAND_PART_NAMES:
            raise ValueError(f"parts: unknown part {p!r} (use {', '.join(BAND_PART_NAMES)})")
    programs = dict(data.get("programs", {}))
    for p, prog in programs.items():
        if p not in BAND_PART_NAMES or p == "drums":
            raise ValueError(f"[programs]: unknown part {p!r} (use bass, keys, pad)")
        if not isinstance(prog, int) or not 0 <= prog < 128:
            raise ValueError(f"[programs] {p} = {prog!r}: a GM program is 0-127")
    feel = dict(data.get("feel", {}))
    extra = sorted(set(feel) - {"swing", "fills", "time", "crash", "drums_from"})
    if extra:
        raise ValueError(f"[feel]: unknown key {extra[0]!r}")
    swing = _fraction(feel, "swing", "0 (straight) .. 1 (triplet)")
    drums_from = _fraction(feel, "drums_from", "0 .. 1, the band's intensity below which the drums rest")
    crash = feel.get("crash", False)
    if not isinstance(crash, bool):  # bool("no") is True: only true/false says what the file means
        raise ValueError(f"[feel] crash = {crash!r}: must be true or false")
    if feel.get("fills", "phrase") not in FILLS:
        raise ValueError(f"[feel] fills must be one of {', '.join(FILLS)}")
    if feel.get("time", "normal") not in TIMES:
        raise ValueError(f"[feel] time must be one of {', '.join(TIMES)}")
    drums: dict[str, dict[int, tuple[str, str, str]]] = {}
    for meter, table in dict(data.get("drums", {})).items():
        if meter not in METERS:
            raise ValueError(f"[drums]: unknown meter {meter!r} (use {', '.join(METERS)})")
        if not isinstance(table, dict):
            raise ValueError(f'[drums."{meter}"] must be a table of drum = patterns')
        lines: dict[int, tuple[str, str, str]] = {}
        for drum, pats in table.items():
            key = DRUM_KEYS.get(drum)
            if key is None:
                raise ValueError(f'[drums."{meter}"]: unknown drum {drum!r} (use {", ".join(DRUM_KEYS)})')
            variants = [pats] * 3 if isinstance(pats, str) else list(pats)
            if len(variants) != 3:
                raise ValueError(f'[drums."{meter}"] {drum}: one pattern, or three (sparse, normal, busy)')
            lines[key] = tuple(_check_pattern(f'[drums."{meter}"] {drum}', v, meter, DRUM_CHARS) for v in variants)  # type: ignore[assignment]
        drums[meter] = lines
    if "drums" in parts and not drums:
        raise ValueError("the drums play (parts) but [drums] has no pattern")
    return Style(
        name=name,
        label=str(data.get("label", name.title())),
        model=model,
        parts=parts,
        programs=programs,
        swing=swing,
        fills=feel.get("fills", "phrase"),
        time=feel.get("time", "normal"),
        crash=crash,
        drums_from=drums_from,
        drums=drums if "drums" in parts else {},
        bass=_meter_table(data.get("bass"), "bass", BASS_CHARS),
        comp=_meter_table(data.get("comp"), "comp", COMP_CHARS),
        source=source,
    )


def load_style_file(path: Path) -> Style:
    """One style file; StyleError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        return parse_style(data, path.stem, str(path))
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StyleError(f"style file {path}: {text}; skipped") from None
    except RecursionError:  # tables nested thousands deep: no style, and not a crash
        raise StyleError(f"style file {path}: nested too deeply to be a style; skipped") from None


@dataclass
class StyleBook:
    styles: dict[str, Style]
    problems: list[str]

    def get(self, name: str) -> Style:
        try:
            return self.styles[name]
        except KeyError:
            raise ValueError(f"unknown style {name!r}; choose one of {', '.join(self.styles)}") from None


def user_config_dir() -> Path:
    """The user's LiveBand config folder ($XDG_CONFIG_HOME or ~/.config, then LiveBand/),
    where LiveBand.ini, styles/, presets/ and midi_bindings.json live (liveband.paths
    reads it from here)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "LiveBand"


def user_styles_dir() -> Path:
    """The user's styles folder: $LIVEBAND_STYLES, else ``styles`` beside LiveBand.ini in
    the user's config folder (``user_config_dir``)."""
    env = os.environ.get("LIVEBAND_STYLES")
    return Path(env) if env else user_config_dir() / "styles"


def load_styles(user_dir: Path | None = None) -> StyleBook:
    """The shipped styles, then the user's (a user file may replace a shipped style of
    the same name). Shipped ones come first, in file-name order (the menu's order)."""
    styles: dict[str, Style] = {}
    for path in sorted(BUILTIN_DIR.glob("*.toml")):
        st = load_style_file(path)  # a broken shipped file is a bug: raise
        styles[st.name] = st
    problems: list[str] = []
    if user_dir is not None and user_dir.is_dir():
        for path in sorted(user_dir.glob("*.toml")):
            try:
                st = load_style_file(path)
            except StyleError as exc:
                problems.append(str(exc))
                continue
            styles[st.name] = st
    return StyleBook(styles, problems)


_BOOK: StyleBook | None = None


def book() -> StyleBook:
    """The styles of this process (shipped + the user's folder), read once."""
    global _BOOK
    if _BOOK is None:
        _BOOK = load_styles(user_styles_dir())
    return _BOOK


DEFAULT_STYLE = "pop"  # the band's style when nobody chose (read through liveband.config)


def get_style(name: str | Style) -> Style:
    """The style called ``name``; ValueError naming the choices otherwise."""
    return name if isinstance(name, Style) else book().get(name)


def style_names() -> tuple[str, ...]:
    return tuple(book().styles)
