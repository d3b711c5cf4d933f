"""Configuration refuses values that cannot work, with a message naming the field."""

import dataclasses

import pytest

from liveband.config import AudioConfig, EngineConfig


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"tempo": 20}, "tempo"),
        ({"tempo": 400}, "tempo"),
        ({"meter": "5/4"}, "meter"),
        ({"style": "metal"}, "style"),
        ({"temperature": 0}, "temperature"),
        ({"density": 1.5}, "density"),
        ({"harmony_follow": -0.1}, "harmony_follow"),
        ({"backend": "tpu"}, "backend"),
        ({"chunk_steps": 0}, "chunk"),
    ],
)
def test_engine_config_rejects_impossible_values(kwargs, words):
    with pytest.raises(ValueError, match=words):
        EngineConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"sample_rate": 12345}, {"blocksize": 300}, {"blocksize": 16}])
def test_audio_config_rejects_unusable_streams(kwargs):
    with pytest.raises(ValueError):
        AudioConfig(**kwargs)


def test_configs_are_frozen_and_copy_on_change():
    cfg = EngineConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tempo = 120
    faster = cfg.with_(tempo=140)
    assert (cfg.tempo, faster.tempo) == (100.0, 140)
    with pytest.raises(ValueError):
        cfg.with_(tempo=1000)
    assert AudioConfig(blocksize=256).block_ms == pytest.approx(5.333, abs=1e-3)


def test_every_key_in_the_menu_is_already_in_the_spelling_the_config_keeps():
    """The UI's key menu lists KEY_NAMES; a key chosen there, saved in a preset and read
    back through EngineConfig must find itself in the menu again (G# minor, not Ab)."""
    from liveband.config import KEY_NAMES, EngineConfig

    assert len(set(KEY_NAMES)) == 24
    for k in KEY_NAMES:
        assert EngineConfig(key=k).key == k
    assert EngineConfig(key="Ab minor").key == "G# minor" and EngineConfig(key="C# major").key == "Db major"


# what a default or range of a band control looks like when it is written out again
_SPELLED_OUT = [
    r"\b40(\.0)?, 240(\.0)?\b",
    r"\b40(\.0)? <= \w+ <= 240",
    r"\b0\.05, 2(\.0)?\b",
    r"default=0\.9\b",
    r"tempo\W+100\.0\b",
    r"temperature\W+0\.9\b",
    r"density\W+0\.5\b",
    r"harmony_follow\W+0\.5\b",
    r"-40, 40\b",
    r"\b0(\.0)?, 100(\.0)?\)",
    r"min\(240(\.0)?, max\(40",
    r"0(\.0)? <= \w+ <= 100(\.0)?\b",
    r'style: str = "pop"',
    r'meter: str = "4/4"',
    r'default="pop"',
    r'\bor "4/4"',
    r"\b(tempo|temperature|density|harmony_follow): float = \d",
    r'": "(4/4|pop|keyboard)",',
    r'count_in": \d',
    r"blocksize(\": |: int = )256\b",
    r"setRange\(0, 4\)",
    r"_one_of\(\(",
    r"\((1, 127|21, 108)\)",
    r'\("keyboard", "Keys"\)',
    r'"off", "phrase", "more"|"normal", "half", "double"',
    r"-40(\.0)? <= ",
    r"loudness: float \| None = -?\d",
    r"default=-16(\.0)?\b",
]


def test_each_band_default_and_range_is_written_once_in_config():
    """The app's knobs and settings, the command line, presets, MIDI learn and render read
    tempo, creativity, density, follow, count-in, input gain and sync delay from config, and
    meter, style, block size, input and sync modes, fills, time feels and the arranger's split
    too, and the render's loudness target; a render's settings (engine.offline) read the
    same constants from below liveband."""
    import re
    from pathlib import Path

    from liveband import config

    root = Path(config.__file__).resolve().parents[1]
    readers = [
        *sorted((root / "ui").glob("*.py")),
        *sorted((root / "liveband").glob("session*.py")),
        *(
            root / "liveband" / name
            for name in ("cli.py", "presets.py", "midilearn.py", "rendering.py", "commands/render.py")
        ),
        root / "engine" / "offline.py",
        root / "engine" / "mic_input.py",
    ]
    found = [
        f"{path.relative_to(root)}:{i}: {line.strip()}"
        for path in readers
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if any(re.search(p, line) for p in _SPELLED_OUT) and "setRange(0, 100)" not in line
    ]
    assert found == []
    assert (config.TEMPO_RANGE, config.DEFAULT_TEMPO, config.TEMPERATURE_RANGE, config.DEFAULT_TEMPERATURE) == (
        (40.0, 240.0),
        100.0,
        (0.05, 2.0),
        0.9,
    )
    from engine.offline import RenderSettings
    from liveband.presets import Preset

    for e in (config.EngineConfig(), RenderSettings(), Preset()):
        assert (e.style, e.tempo, e.meter, e.temperature, e.density, e.harmony_follow) == (
            config.DEFAULT_STYLE,
            config.DEFAULT_TEMPO,
            config.DEFAULT_METER,
            config.DEFAULT_TEMPERATURE,
            config.DEFAULT_DENSITY,
            config.DEFAULT_HARMONY_FOLLOW,
        ), type(e)
