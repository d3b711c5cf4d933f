"""The band's transport (liveband.session_transport) over a session's real parts
(liveband.session_parts, offline: no audio stream): a followed MIDI clock's start, stop
and continue play and stop the band as the player's buttons do; a Link peer's start or
stop outside Link mode is dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from liveband.config import AudioConfig, EngineConfig
from liveband.session_parts import Parts


@pytest.fixture()
def parts(liveband_home) -> Iterator[Parts]:
    p = Parts(EngineConfig(tempo=120.0), AudioConfig(), None, None, learn_targets=dict)
    p.start(start_audio=False)
    yield p
    p.transport.stop()
    p.close()


def test_a_followed_clock_starts_restarts_and_stops_the_band(parts):
    t, band = parts.transport, parts.band
    assert t.prepare(timeout=120)
    t.follow("start")
    assert band.playing
    first = band.clock
    t.follow("continue")  # while playing: nothing to do
    assert band.playing and band.clock is first
    t.follow("start")  # while playing: from the top
    assert band.playing and band.clock is not first
    t.follow("stop")
    assert not band.playing
    t.follow("continue")  # while stopped: plays
    assert band.playing


def test_a_link_peers_start_or_stop_outside_link_mode_is_dropped(parts):
    t, band = parts.transport, parts.band
    t.follow("link start")
    assert not band.playing
    t.play()
    t.follow("link stop")
    assert band.playing
    t.stop()
    assert not band.playing
