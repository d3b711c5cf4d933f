"""A take stopped while its disk is full is not lost: the session says it is not saved
yet, saves it once the player frees some space, and if the app closes first, puts the
audio it could not write on another file system and says where. A real session on the
software audio server; the take's disk is "full" for the take's WAV only (every append
fails with ENOSPC), so the other file system keeps its room."""

from __future__ import annotations

import json
import threading
import time
import wave

import pytest
from waiting import wait_for

import engine.recorder
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session
from models.rules import RuleAccompanist

NOT_SAVED = "is not saved yet"


def take_on_a_full_disk(take_disk: threading.Event) -> tuple[Session, object]:
    s = Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256), accompanist=RuleAccompanist())
    assert s.audio.active, s.snapshot().notices
    s.play()
    s.key_event(60, True)
    time.sleep(1.0)
    folder = s.recorder.folder
    take_disk.set()
    time.sleep(1.0)  # a second the disk has no room for
    s.key_event(60, False)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 5.0  # stop does not wait for room
    return s, folder


def not_saved(s: Session) -> list[str]:
    return [n for n in s.snapshot().notices if NOT_SAVED in n]


def frames(path) -> int:
    with wave.open(str(path)) as w:
        return w.getnframes()


@pytest.mark.timeout(120)
def test_a_take_stopped_on_a_full_disk_is_saved_once_there_is_room(pulse_server, liveband_home, take_disk):
    s, folder = take_on_a_full_disk(take_disk)
    try:
        assert wait_for(lambda: not_saved(s), 5.0), s.snapshot().notices
        assert "No space left on device" in not_saved(s)[0]
        take_disk.clear()  # the player frees some space
        assert wait_for(lambda: not not_saved(s), 10.0), s.snapshot().notices
        assert not [n for n in s.snapshot().notices if "No space left" in n]  # none stale
        assert json.loads((folder / "session.json").read_text())["complete"] is True
        assert frames(folder / "mix.wav") >= 1.8 * 48000  # the second on the full disk too
        assert s.close() == []
    finally:
        s.close()


@pytest.mark.timeout(120)
def test_a_take_still_unsaved_at_close_goes_elsewhere_and_close_says_where(
    pulse_server, liveband_home, take_disk, monkeypatch, tmp_path
):
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setattr(
        engine.recorder, "spill_dirs", lambda: [run]
    )  # (the runtime folder holds the audio server's socket)
    s, folder = take_on_a_full_disk(take_disk)
    try:
        assert wait_for(lambda: not_saved(s), 5.0), s.snapshot().notices
        told = s.close()
    finally:
        s.close()
    spilled = list(run.glob("liveband-*.wav"))
    assert len(spilled) == 1 and not list(run.glob("*.part"))
    assert len(told) == 1 and str(spilled[0]) in told[0] and "the disk stayed full" in told[0]
    on_disk, rest = frames(folder / "mix.wav"), frames(spilled[0])
    assert on_disk >= 0.8 * 48000 and rest >= 0.8 * 48000  # before the disk filled, and after
    assert on_disk + rest >= 1.8 * 48000
