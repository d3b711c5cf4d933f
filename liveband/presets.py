"""Band presets: a named band setup saved as a plain JSON file and put back on a session.

A preset holds the style, tempo, meter, a fixed key (or none: follow the playing), the
knobs (creativity, intensity, follow, master), the drummer's feel, each part's mixer
strip (mute, solo, volume, GM program; "through" for the player's own part) and the
chord chart when the session has one. Files live in ``liveband.paths.presets_dir()``
(~/.config/LiveBand/presets/NAME.json), are written to a temporary file in the same
folder and renamed into place, and are read as JSON only (never unpickled), checked
field by field: a corrupt or hostile file gives one ``PresetError`` line naming the file
and the field, and nothing is applied.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.small_file import SMALL_FILE_MAX
from liveband.config import (
    DEFAULT_DENSITY,
    DEFAULT_HARMONY_FOLLOW,
    DEFAULT_METER,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPO,
    TEMPERATURE_RANGE,
    TEMPO_RANGE,
)
from liveband.errors import UserError
from liveband.paths import presets_dir
from models.atomic import write_atomic

VERSION = 1
NAME_MAX = 80
FILE_MAX = SMALL_FILE_MAX  # a preset is ~1 KB; anything far larger is not one
CHART_MAX = 64 * 1024
PART_FIELDS = ("mute", "solo", "volume", "program", "through")


class PresetError(UserError):
    """A preset that cannot be used; one line naming the file (or the name) and why."""


@dataclass(frozen=True)
class PartSetup:
    mute: bool = False
    solo: bool = False
    volume: float = 1.0
    program: int = 0
    through: bool = True  # the player's part only: sound it here (off with a hardware synth)


@dataclass(frozen=True)
class Preset:
    style: str = DEFAULT_STYLE
    tempo: float = DEFAULT_TEMPO
    meter: str = DEFAULT_METER
    key: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    density: float = DEFAULT_DENSITY
    harmony_follow: float = DEFAULT_HARMONY_FOLLOW
    master: float = 0.8
    swing: float | None = None
    fills: str | None = None
    time_feel: str | None = None
    humanise: float = 0.0
    parts: dict[str, PartSetup] = field(default_factory=dict)
    chart: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"liveband_preset": VERSION, **data}


def check_name(name: str) -> str:
    """``name`` when it can name a preset file (one plain name: no path, not hidden,
    printable, at most 80 characters); PresetError otherwise."""
    shown = name if len(name) <= 40 else name[:37] + "..."
    if (
        not isinstance(name, str)
        or not name
        or name != name.strip()
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or len(name) > NAME_MAX
        or not name.isprintable()
    ):
        raise PresetError(
            f"{shown!r} is not a preset name: use letters, digits, spaces, - or _ (at most {NAME_MAX} characters)"
        )
    return name


def preset_path(name: str, folder: Path | None = None) -> Path:
    return (folder or presets_dir()) / f"{check_name(name)}.json"


def list_presets(folder: Path | None = None) -> list[str]:
    """The saved presets' names, sorted (a folder that does not exist holds none)."""
    folder = folder or presets_dir()
    try:
        return sorted(p.stem for p in folder.glob("*.json") if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []


def save_preset(name: str, preset: Preset, folder: Path | None = None) -> Path:
    """Write ``preset`` as NAME.json (replacing a preset of that name); temporary file in
    the same folder, then rename. PresetError (one line) when it cannot be written."""
    path = preset_path(name, folder)
    text = json.dumps(preset.to_json(), indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise PresetError(f"cannot save preset {name!r} to {path}: {exc.strerror or exc}") from None
    return path


def delete_preset(name: str, folder: Path | None = None) -> None:
    path = preset_path(name, folder)
    try:
        path.unlink()
    except FileNotFoundError:
        raise PresetError(f"no preset named {name!r} in {path.parent}") from None
    except OSError as exc:
        raise PresetError(f"cannot delete {path}: {exc.strerror or exc}") from None


def load_preset(name: str, folder: Path | None = None) -> Preset:
    """The preset saved as NAME.json, checked field by field; PresetError (one line naming
    the file) for a missing, unreadable, oversized, non-JSON or badly typed file."""
    path = preset_path(name, folder)
    try:
        if path.is_symlink() or not path.is_file():
            if not path.exists():
                known = list_presets(folder)
                raise PresetError(
                    f"no preset named {name!r} in {path.parent}"
                    + (f" (saved: {', '.join(known[:8])})" if known else "")
                )
            raise PresetError(f"{path}: not a plain file")
        if path.stat().st_size > FILE_MAX:
            raise PresetError(f"{path}: {path.stat().st_size} bytes is too large for a preset")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise PresetError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise PresetError(f"{path}: nested too deeply to be a preset") from None
    try:
        return parse_preset(data)
    except ValueError as exc:
        raise PresetError(f"{path}: {exc}") from None


def _number(v: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f'"{what}": {json.dumps(v)[:40]} is not a number {lo:g}-{hi:g}')
    return float(v)


def _choice(v: Any, what: str, choices) -> Any:
    if v not in choices:
        raise ValueError(f'"{what}": {json.dumps(v)[:40]} is not one of {", ".join(map(str, choices))}')
    return v


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f'"{what}": {json.dumps(v)[:40]} is not true or false')
    return v


def parse_preset(data: Any) -> Preset:
    """A ``Preset`` from decoded JSON; ValueError naming the first bad field."""
    from engine import parts as P
    from engine.clock import METERS
    from engine.feel import FILLS, TIMES
    from engine.keyfind import key_name, parse_key
    from engine.styles import style_names

    if not isinstance(data, dict):
        raise ValueError("not a LiveBand preset (expected a JSON object)")
    if data.get("liveband_preset") != VERSION:
        raise ValueError(f'not a LiveBand preset (no "liveband_preset": {VERSION})')
    known = set(Preset.__dataclass_fields__) | {"liveband_preset"}
    extra = sorted(k for k in data if k not in known)
    if extra:
        raise ValueError(f'unknown field "{str(extra[0])[:40]}"')
    d = Preset()
    key = data.get("key", d.key)
    if key is not None:
        if not isinstance(key, str):
            raise ValueError(f'"key": {json.dumps(key)[:40]} is not a key name')
        key = key_name(*parse_key(key))
    swing = data.get("swing")
    chart = data.get("chart")
    if chart is not None and (not isinstance(chart, str) or len(chart) > CHART_MAX):
        raise ValueError('"chart" is not chord-chart text')
    if chart:
        from engine.chart import ChartError, parse_chart

        try:
            parse_chart(chart, "chart")  # checked now: a bad one must change nothing
        except ChartError as exc:
            raise ValueError(f'"chart": {exc}') from None
    parts_in = data.get("parts", {})
    if not isinstance(parts_in, dict):
        raise ValueError('"parts" is not an object')
    parts: dict[str, PartSetup] = {}
    for name, ps in parts_in.items():
        if name not in P.PARTS_BY_NAME:
            raise ValueError(f'"parts": unknown part {str(name)[:20]!r}')
        if not isinstance(ps, dict) or any(k not in PART_FIELDS for k in ps):
            raise ValueError(f'"parts.{name}" is not a part setup ({", ".join(PART_FIELDS)})')
        base = PartSetup(program=P.part(name).program)
        parts[name] = PartSetup(
            _bool(ps.get("mute", base.mute), f"parts.{name}.mute"),
            _bool(ps.get("solo", base.solo), f"parts.{name}.solo"),
            _number(ps.get("volume", base.volume), f"parts.{name}.volume", 0, 1),
            int(_number(ps.get("program", base.program), f"parts.{name}.program", 0, 127)),
            _bool(ps.get("through", base.through), f"parts.{name}.through"),
        )
        if isinstance(ps.get("program"), float) and not float(ps["program"]).is_integer():
            raise ValueError(f'"parts.{name}.program" is not a whole number')
    style = data.get("style", d.style)
    if not isinstance(style, str):
        raise ValueError(f'"style": {json.dumps(style)[:40]} is not a style name')
    return Preset(
        style=_choice(style, "style", style_names()),
        tempo=_number(data.get("tempo", d.tempo), "tempo", *TEMPO_RANGE),
        meter=_choice(data.get("meter", d.meter), "meter", METERS),
        key=key,
        temperature=_number(data.get("temperature", d.temperature), "temperature", *TEMPERATURE_RANGE),
        density=_number(data.get("density", d.density), "density", 0, 1),
        harmony_follow=_number(data.get("harmony_follow", d.harmony_follow), "harmony_follow", 0, 1),
        master=_number(data.get("master", d.master), "master", 0, 1),
        swing=None if swing is None else _number(swing, "swing", 0, 1),
        fills=None if data.get("fills") is None else _choice(data["fills"], "fills", FILLS),
        time_feel=None if data.get("time_feel") is None else _choice(data["time_feel"], "time_feel", TIMES),
        humanise=_number(data.get("humanise", d.humanise), "humanise", 0, 1),
        parts=parts,
        chart=chart,
    )


def capture(session) -> Preset:
    """The session's band setup now, as a preset."""
    cfg = session.engine_config
    snap = session.snapshot()
    parts = {
        name: PartSetup(bool(s.mute), bool(s.solo), float(s.volume), int(s.program), bool(getattr(s, "through", True)))
        for name, s in snap.parts.items()
    }
    chart = getattr(session, "chart_text", None)
    chart = chart() if callable(chart) else chart
    return Preset(
        style=cfg.style,
        tempo=float(cfg.tempo),
        meter=cfg.meter,
        key=cfg.key,
        temperature=float(cfg.temperature),
        density=float(cfg.density),
        harmony_follow=float(cfg.harmony_follow),
        master=float(session.master_volume),
        swing=cfg.swing,
        fills=cfg.fills,
        time_feel=cfg.time_feel,
        humanise=float(cfg.humanise),
        parts=parts,
        chart=chart if isinstance(chart, str) and chart.strip() else None,
    )


def apply(session, preset: Preset) -> None:
    """Put ``preset`` on ``session`` (every value was checked when it was loaded)."""
    session.set_style(preset.style)
    session.set_meter(preset.meter)
    session.set_tempo(preset.tempo)
    session.set_key(preset.key)
    session.set_temperature(preset.temperature)
    session.set_density(preset.density)
    session.set_harmony_follow(preset.harmony_follow)
    session.set_master_volume(preset.master)
    session.set_feel(swing=preset.swing, fills=preset.fills, time_feel=preset.time_feel, humanise=preset.humanise)
    known = session.snapshot().parts
    for name, ps in preset.parts.items():
        if name in known:
            extra = {"through": ps.through} if name == "melody" else {}
            session.set_part(name, mute=ps.mute, solo=ps.solo, volume=ps.volume, program=ps.program, **extra)
    if callable(getattr(session, "set_chart_text", None)):
        session.set_chart_text(preset.chart or "")  # a preset without a chart: the band finds its own
