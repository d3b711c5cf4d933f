"""Configuration refuses values that cannot work, with a message naming the field."""
import dataclasses

import pytest

from liveband.config import AudioConfig, EngineConfig


@pytest.mark.parametrize("kwargs, words", [
    ({"tempo": 20}, "tempo"), ({"tempo": 400}, "tempo"), ({"meter": "5/4"}, "meter"),
    ({"style": "metal"}, "style"), ({"temperature": 0}, "temperature"), ({"density": 1.5}, "density"),
    ({"harmony_follow": -0.1}, "harmony_follow"), ({"backend": "tpu"}, "backend"), ({"chunk_steps": 0}, "chunk"),
])
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
