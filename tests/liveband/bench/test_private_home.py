"""The benches' own LIVEBAND_HOME: set while they run, the old one put back and the folder removed."""

import os
from pathlib import Path

from liveband.bench.softaudio import PrivateHome


def test_a_private_home_is_set_then_put_back_and_removed(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEBAND_HOME", str(tmp_path / "user"))
    with PrivateHome("liveband-test-") as home:
        assert os.environ["LIVEBAND_HOME"] == home and Path(home).is_dir()
        (Path(home) / "take.wav").write_bytes(b"x")
    assert os.environ["LIVEBAND_HOME"] == str(tmp_path / "user") and not Path(home).exists()
    monkeypatch.delenv("LIVEBAND_HOME")
    other = PrivateHome()
    other.close()
    assert "LIVEBAND_HOME" not in os.environ and not Path(other.path).exists()
