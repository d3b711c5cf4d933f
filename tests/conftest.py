"""Shared fixtures. The audio-server fixtures start real software servers (PulseAudio null
sink, JACK dummy) that the tests talk to through PortAudio; each stops only what it started."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from liveband.bench.softaudio import SoftwareAudioServer
from liveband.paths import find_soundfont

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def pulse_server():
    """A private PulseAudio server: default sink 'speakers' (monitor recordable), source 'fakemic'."""
    with SoftwareAudioServer("pulse") as srv:
        yield srv


@pytest.fixture()
def jack_server():
    """A private JACK server with the dummy driver (48 kHz, 256-frame periods)."""
    with SoftwareAudioServer("jack") as srv:
        yield srv


@pytest.fixture(scope="session")
def soundfont() -> Path:
    return find_soundfont()


@pytest.fixture()
def liveband_home(tmp_path, monkeypatch) -> Path:
    """Keep recorded sessions and settings of a test inside its tmp folder."""
    monkeypatch.setenv("LIVEBAND_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
