"""Shared fixtures. The audio-server fixtures start real software servers (PulseAudio null
sink, JACK dummy) that the tests talk to through PortAudio; each stops only what it started."""

from __future__ import annotations

import errno
import inspect
import os
import re
import threading
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
    """A private JACK server with the dummy driver (48 kHz, 256-frame periods), and the
    system default output on it: while the test's PulseAudio runs, ALSA's default device
    is PulseAudio's, so a session on the default would play there, not on this JACK (a
    frozen JACK would then stall nothing). PulseAudio is hidden until the test ends."""
    from engine.audio_devices import refresh_devices

    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH")}
    os.environ.pop("PULSE_RUNTIME_PATH", None)
    os.environ["PULSE_SERVER"] = "unix:/nonexistent/liveband-no-pulse"  # and no autospawn
    try:
        with SoftwareAudioServer("jack") as srv:
            yield srv
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        refresh_devices()


@pytest.fixture(scope="session")
def soundfont() -> Path:
    return find_soundfont()


@pytest.fixture()
def liveband_home(tmp_path, monkeypatch) -> Path:
    """Keep recorded sessions and settings of a test inside its tmp folder."""
    monkeypatch.setenv("LIVEBAND_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def take_disk(monkeypatch) -> threading.Event:
    """A take's own disk, which a test fills by setting the event: every append to the
    take's WAV (engine.recorder) then fails with ENOSPC, while other file systems keep
    their room (where a real full tmpfs would need root: tests/liveband/fsfaults.py)."""
    import engine.recorder

    full = threading.Event()
    write = engine.recorder._TakeWav.write

    def write_or_no_space(self, frames):
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, frames)

    monkeypatch.setattr(engine.recorder._TakeWav, "write", write_or_no_space)
    return full


# ---------------------------------------------------------------------------- tiers
# Every test gets one tier marker (registered in pyproject.toml), set here from what it
# uses, and the tiers run in this order, fast pure units first:
# `make test PYTEST_ARGS='-m unit'` runs one tier.
#   unit        pure code, the debug model, synthetic signals, offscreen widgets (seconds)
#   checkpoint  loads the shipped model weights (models/checkpoints), or a whole Session
#               (which loads them unless told another checkpoint)
#   realtime    a real audio server (PulseAudio, JACK) or X server (Xvfb)
TIERS = ("unit", "checkpoint", "realtime")
REALTIME_FIXTURES = {"pulse_server", "jack_server"}
REALTIME_SOURCE = re.compile(r"\b(SoftwareAudioServer|Xvfb)\(")  # a test starting its own
# how a test (or a fixture or module-level helper it calls) names the shipped weights
SHIPPED_WEIGHTS = re.compile(
    r"\b(DEFAULT_CHECKPOINT|OFFLINE_CHECKPOINT|default_offline_checkpoint)\b|"
    r"\bload_model\(\)|\bload_accompanist\(\)|\bSession\("
)


def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _tier(item: pytest.Item) -> str:
    if REALTIME_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "realtime"
    func = getattr(item, "function", None)
    texts = [_source(func)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        texts += [_source(d.func) for d in defs if "tests" in Path(inspect.getsourcefile(d.func) or "").parts]
    module = inspect.getmodule(func) if func is not None else None
    called = set(re.findall(r"\b(\w+)\(", "\n".join(texts)))
    texts += [
        _source(getattr(module, name))
        for name in called
        if inspect.isfunction(getattr(module, name, None)) and getattr(module, name).__module__ == module.__name__
    ]
    text = "\n".join(texts)
    if REALTIME_SOURCE.search(text):
        return "realtime"
    return "checkpoint" if SHIPPED_WEIGHTS.search(text) else "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {}
    for item in items:
        tier = _tier(item)
        item.add_marker(tier)
        rank[item.nodeid] = TIERS.index(tier)
    items.sort(key=lambda it: rank[it.nodeid])  # stable: each tier keeps the collected order
