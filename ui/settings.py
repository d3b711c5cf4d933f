"""What the window remembers between runs: LiveBand.ini in the user's config folder
(where QSettings keeps organisation "LiveBand", so older files are found and read).

The file is read and written here as plain text, never through QSettings: QSettings
turns an ``@Variant(... PyQt_PyObject ...)`` entry into a Python object by unpickling it,
and does so for every entry of a section as soon as any key of it is read, so a crafted
file would run code. Values are stored as plain strings and numbers and parsed with the
type of their default; a missing, unreadable or out-of-range value falls back to the
default, with a notice naming the file and the key (``Settings.notices``).
Thread: UI only.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QSettings

from liveband.config import (
    COUNT_IN_RANGE,
    DEFAULT_BLOCKSIZE,
    DEFAULT_COUNT_IN_BARS,
    DEFAULT_DENSITY,
    DEFAULT_HARMONY_FOLLOW,
    DEFAULT_INPUT_MODE,
    DEFAULT_METER,
    DEFAULT_SPLIT,
    DEFAULT_STYLE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPO,
    FILLS,
    INPUT_GAIN_DB_RANGE,
    INPUT_MODES,
    METERS,
    SPLIT_RANGE,
    STYLES,
    SYNC_DELAY_MS_RANGE,
    SYNC_MODES,
    TEMPERATURE_RANGE,
    TEMPO_RANGE,
    TIMES,
    UNIT_RANGE,
)
from models.atomic import write_atomic
from ui.panels import BLOCKSIZES

ORG = "LiveBand"
APP = "LiveBand"

# key -> default (the default's type is the stored type)
DEFAULTS: dict[str, Any] = {
    "transport/tempo": DEFAULT_TEMPO,
    "transport/meter": DEFAULT_METER,
    "transport/count_in": DEFAULT_COUNT_IN_BARS,
    "transport/metronome": False,
    "transport/key": "Auto",
    "transport/record": True,
    "band/style": DEFAULT_STYLE,
    "band/temperature": DEFAULT_TEMPERATURE,
    "band/density": DEFAULT_DENSITY,
    "band/harmony_follow": DEFAULT_HARMONY_FOLLOW,
    "band/master": 0.8,
    # the feel; a missing one is the style's own (ui.feel)
    "band/swing": 0.0,
    "band/fills": "phrase",
    "band/time": "normal",
    "band/humanise": 0.0,
    # the Chords tab's arranger (a chart is a song's: presets keep it, not the app)
    "chords/arranger": False,
    "chords/split": DEFAULT_SPLIT,
    "input/mode": DEFAULT_INPUT_MODE,
    "devices/audio_out": "",
    "devices/audio_in": "",
    "devices/input_gain_db": 0,
    "devices/blocksize": DEFAULT_BLOCKSIZE,
    "devices/auto_buffer": False,  # raise the buffer by itself on repeated dropouts
    "devices/midi_in": "",
    "devices/midi_out": "",
    "devices/sync": "internal",
    "devices/sync_delay_ms": 0.0,
    "devices/send_clock": False,
    "window/geometry": b"",
}
PART_KEYS = ("mute", "solo", "volume", "program")
PART_DEFAULTS: dict[str, Any] = {"mute": False, "solo": False, "volume": 1.0, "program": 0}


def _within(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: lo <= v <= hi), f"{lo:g}-{hi:g}"


def _one_of(choices) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(map(str, choices))


# key (or the last part of a parts/NAME/... key) -> (is it usable, what is allowed)
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "transport/tempo": _within(*TEMPO_RANGE),
    "transport/meter": _one_of(METERS),
    "transport/count_in": _within(*COUNT_IN_RANGE),
    "band/style": _one_of(STYLES),
    "band/temperature": _within(*TEMPERATURE_RANGE),
    "band/density": _within(*UNIT_RANGE),
    "band/harmony_follow": _within(*UNIT_RANGE),
    "band/master": _within(0, 1),
    "band/swing": _within(0, 1),
    "band/fills": _one_of(FILLS),
    "band/time": _one_of(TIMES),
    "band/humanise": _within(0, 1),
    "chords/split": _within(*SPLIT_RANGE),
    "input/mode": _one_of(INPUT_MODES),
    "devices/input_gain_db": _within(*INPUT_GAIN_DB_RANGE),
    "devices/blocksize": _one_of(BLOCKSIZES),
    "devices/sync": _one_of(SYNC_MODES),
    "devices/sync_delay_ms": _within(*SYNC_DELAY_MS_RANGE),
    "volume": _within(0, 1),
    "program": _within(0, 127),
}


class Settings:
    """LiveBand.ini as a key -> value map ("section/name" keys, QSettings's INI layout).

    Values read from the file are strings (``bytes`` for ``@ByteArray``); ``read`` parses
    them. Entries QSettings would turn into objects (``@Variant``, ``@Point``...) are
    dropped with a notice. ``sync`` writes the file through a temporary file in the same
    folder, renamed into place."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.notices: list[str] = []
        self._noticed: set[str] = set()
        self._values: dict[str, str | bytes] = {}
        self._dirty = False
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            self.notice("", f"cannot read {self.path} ({exc.strerror or exc}); using the defaults")
            return
        self._parse(text)

    def fileName(self) -> str:  # noqa: N802 - the QSettings name, so callers need not care
        return str(self.path)

    def notice(self, key: str, message: str) -> None:
        """Remember a problem once per key (read() is called more than once per key)."""
        if key not in self._noticed:
            self._noticed.add(key)
            self.notices.append(message)

    def contains(self, key: str) -> bool:
        return key in self._values

    def raw(self, key: str) -> str | bytes | None:
        return self._values.get(key)

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802
        if isinstance(value, bool):
            text: str | bytes = "true" if value else "false"
        elif isinstance(value, (bytes, bytearray)):
            text = bytes(value)
        else:
            text = str(value)
        if self._values.get(key) != text:
            self._values[key] = text
            self._dirty = True

    def sync(self) -> None:
        """Write the file if anything changed (OSError when the folder is not writable)."""
        if not self._dirty:
            return
        sections: dict[str, list[tuple[str, str | bytes]]] = {}
        for key, value in self._values.items():
            section, _, name = key.partition("/") if "/" in key else ("General", "", key)
            sections.setdefault(section, []).append((name, value))
        lines = []
        for section in sorted(sections):
            lines.append(f"[{_escape_key(section)}]")
            for name, value in sorted(sections[section]):
                lines.append(f"{_escape_key(name).replace('/', chr(92))}={_format_value(value)}")
            lines.append("")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "\n".join(lines))
        self._dirty = False

    def _parse(self, text: str) -> None:
        section = "General"
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in ";#":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = _unescape_key(line[1:-1])
                continue
            name, sep, value = line.partition("=")
            if not sep:
                continue
            name = _unescape_key(name.strip()).replace("\\", "/")
            key = name if section == "General" else f"{section}/{name}"
            try:
                self._values[key] = _parse_value(value.strip())
            except ValueError as exc:
                self.notice(key, f"{self.path}: ignored {key} ({exc}); using the default")


def _unescape_key(s: str) -> str:
    # QSettings writes odd characters in keys as %XX or %UXXXX.
    s = re.sub(r"%U([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), s)
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


def _escape_key(s: str) -> str:
    return "".join(
        c
        if (c.isalnum() or c in "-_./\\") and ord(c) < 128
        else (f"%{ord(c):02X}" if ord(c) < 256 else f"%U{ord(c):04X}")
        for c in s
    )


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    "'": "'",
    "?": "?",
    ";": ";",
    ",": ",",
    "=": "=",
}


def _unescape(s: str) -> str:
    """QSettings's INI string escapes: quotes group, backslash escapes (\\n, \\xHH, \\0oct)."""
    out, i, n = [], 0, len(s)
    while i < n:
        c = s[i]
        if c == '"':
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            e = s[i + 1]
            if e in "xX":
                m = re.match(r"[0-9A-Fa-f]{1,4}", s[i + 2 :])
                if m:
                    out.append(chr(int(m.group(0), 16)))
                    i += 2 + len(m.group(0))
                    continue
            elif e in "01234567":
                m = re.match(r"[0-7]{1,3}", s[i + 1 :])
                if m:  # always: e is its first digit
                    out.append(chr(int(m.group(0), 8)))
                    i += 1 + len(m.group(0))
                    continue
            out.append(_ESCAPES.get(e, e))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _parse_value(text: str) -> str | bytes:
    value = _unescape(text)
    if value.startswith("@@"):
        return value[1:]
    if value.startswith("@ByteArray(") and value.endswith(")"):
        return value[len("@ByteArray(") : -1].encode("latin-1", errors="replace")
    if value.startswith("@Invalid()"):
        return ""
    if value.startswith("@") and "(" in value:
        # @Variant(...) would be unpickled by PyQt; @Point/@Rect/... are not ours.
        kind = value[1 : value.index("(")]
        raise ValueError(f"it holds a stored {kind} object, which LiveBand never loads")
    return value


def _format_value(value: str | bytes) -> str:
    if isinstance(value, bytes):
        value = value.hex()
    if value.startswith("@"):
        value = "@" + value
    out = []
    for i, c in enumerate(value):
        if c in '\\"':
            out.append("\\" + c)
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{ord(c):02x}")
        elif c in "0123456789abcdefABCDEF" and out and out[-1].startswith("\\x"):
            out.append(f"\\x{ord(c):02x}")  # a hex digit after \xHH would extend it
        else:
            out.append(c)
    text = "".join(out)
    if text != text.strip() or any(c in text for c in ",;=") or '"' in value:
        text = f'"{text}"'
    return text


def settings_path() -> Path:
    """Where the user's LiveBand.ini is (QSettings's place for it: $XDG_CONFIG_HOME or
    ~/.config, or a folder set with QSettings.setPath). Finding the name reads nothing."""
    return Path(QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP).fileName())


def open_settings(path: str | os.PathLike | None = None) -> Settings:
    """The user's settings file, or the one at ``path``."""
    return Settings(path if path is not None else settings_path())


def as_settings(settings: Settings | QSettings | None) -> Settings:
    """A Settings for what callers pass: None (the user's file), a Settings, or a
    QSettings naming a file (read here as plain text, never through QSettings)."""
    if settings is None:
        return open_settings()
    if isinstance(settings, Settings):
        return settings
    return Settings(settings.fileName())


def read(settings: Settings | QSettings, key: str, default: Any = None) -> Any:
    """The stored value of ``key`` converted to its default's type; the default when
    missing, unreadable or out of range (with a notice in ``settings.notices`` naming the
    file and the key)."""
    settings = settings if isinstance(settings, Settings) else as_settings(settings)
    if default is None:
        default = DEFAULTS[key]
    raw = settings.raw(key)
    if raw is None:
        return default
    try:
        value = _convert(raw, default)
        check = CHECKS.get(key) or (CHECKS.get(key.rsplit("/", 1)[-1]) if key.startswith("parts/") else None)
        if check is not None and not check[0](value):
            raise ValueError(check[1])
        return value
    except (TypeError, ValueError) as exc:
        shown = raw if isinstance(raw, str) else raw.hex()
        if len(shown) > 40:
            shown = shown[:40] + "..."
        settings.notice(
            key, f"{settings.fileName()}: {key}={shown} is not usable ({exc or 'wrong type'}); using {default!r}"
        )
        return default


def _convert(raw: str | bytes, default: Any) -> Any:
    if isinstance(default, bytes):
        return raw if isinstance(raw, bytes) else bytes.fromhex(raw)
    if isinstance(raw, bytes):
        raise ValueError(f"expected {type(default).__name__}")
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        return int(raw.strip())
    if isinstance(default, float):
        v = float(raw.strip())
        if not math.isfinite(v):
            raise ValueError("not a finite number")
        return v
    return raw


def write(settings: Settings, key: str, value: Any) -> None:
    settings.setValue(key, value)
