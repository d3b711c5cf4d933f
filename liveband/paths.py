"""Where LiveBand finds the SoundFont and the user's files (sessions, presets, config).
The shipped model is models.runtime's, the corpora's folder models.data's, the cache
models.onnxcache's."""

from __future__ import annotations

import os
from pathlib import Path

# the engine reads its styles in the user's config folder and may not import liveband
from engine.styles import user_config_dir

SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
SOUNDFONT_PACKAGE = "fluid-soundfont-gm"


def find_soundfont(user_path: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: the user's, $LIVEBAND_SOUNDFONT, or a Debian GM font.

    Raises FileNotFoundError with a message naming the package to install.
    """
    if user_path is not None:
        p = Path(user_path)
        if not p.is_file():
            raise FileNotFoundError(f"SoundFont not found: {p}")
        return p
    env = os.environ.get("LIVEBAND_SOUNDFONT")
    if env:
        return find_soundfont(env)
    for p in SOUNDFONT_CANDIDATES:
        if p.is_file():
            return p
    raise FileNotFoundError(
        "no General MIDI SoundFont found; install one with "
        f"'sudo apt-get install {SOUNDFONT_PACKAGE}' or pass --soundfont FILE.sf2"
    )


def sessions_dir() -> Path:
    """Folder holding recorded sessions ($LIVEBAND_HOME/sessions, default ~/.liveband/sessions)."""
    home = Path(os.environ.get("LIVEBAND_HOME", Path.home() / ".liveband"))
    return home / "sessions"


def presets_dir() -> Path:
    """Folder of the user's band presets ($LIVEBAND_PRESETS, else presets/ in user_config_dir())."""
    env = os.environ.get("LIVEBAND_PRESETS")
    return Path(env) if env else user_config_dir() / "presets"
