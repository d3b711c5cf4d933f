"""What the window remembers between runs, stored with QSettings (organisation "LiveBand").

One table of known keys with their types and defaults, so a missing or corrupt value
falls back to the default instead of breaking the window. Thread: UI only.
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QSettings

ORG = "LiveBand"
APP = "LiveBand"

# key -> default (the default's type is the stored type)
DEFAULTS: dict[str, Any] = {
    "transport/tempo": 100.0,
    "transport/meter": "4/4",
    "transport/count_in": 1,
    "transport/metronome": False,
    "transport/key": "Auto",
    "transport/record": True,
    "band/style": "pop",
    "band/temperature": 0.9,
    "band/density": 0.5,
    "band/harmony_follow": 0.5,
    "band/master": 0.8,
    "input/mode": "keyboard",
    "devices/audio_out": "",
    "devices/audio_in": "",
    "devices/input_gain_db": 0,
    "devices/blocksize": 256,
    "devices/midi_in": "",
    "devices/midi_out": "",
    "window/geometry": b"",
}
PART_KEYS = ("mute", "solo", "volume", "program")
PART_DEFAULTS: dict[str, Any] = {"mute": False, "solo": False, "volume": 1.0, "program": 0}


def open_settings() -> QSettings:
    """The user's settings file (INI, so it is readable and tests can redirect it with
    QSettings.setPath or XDG_CONFIG_HOME)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def read(settings: QSettings, key: str, default: Any = None) -> Any:
    """The stored value of ``key`` converted to its default's type; the default when
    missing or unreadable."""
    if default is None:
        default = DEFAULTS[key]
    if not settings.contains(key):
        return default
    raw = settings.value(key)
    try:
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            v = float(raw)
            return v if v == v else default    # NaN -> default
        if isinstance(default, bytes):
            return bytes(raw) if raw is not None else default
        return str(raw)
    except (TypeError, ValueError):
        return default


def write(settings: QSettings, key: str, value: Any) -> None:
    settings.setValue(key, value)
