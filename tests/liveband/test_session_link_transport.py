"""Ableton Link start/stop sync over real pieces: a session following Link and an aalink
peer on localhost (the real synth and audio stream on a JACK dummy server). The peer's
play/stop start and stop the band; the band's play/stop start and stop the peer; Link's
report of the band's own change does not start or stop it again."""

from __future__ import annotations

import time

import pytest
from waiting import wait_for

from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

pytest.importorskip("aalink")
from test_session_link import Peer  # noqa: E402  (a small Link app, as there)


@pytest.mark.timeout(150)
def test_link_play_and_stop_go_both_ways_between_the_band_and_a_peer(jack_server, liveband_home):
    peer = Peer(120.0)
    peer.link.start_stop_sync_enabled = True
    try:
        with Session(EngineConfig(tempo=120.0, count_in_bars=1), AudioConfig(blocksize=256)) as s:
            assert s.audio.active, s.snapshot().notices
            assert s.prepare(60)
            s.set_sync("link")
            assert wait_for(lambda: s.sync.link.num_peers >= 1, 10.0), "the peers never found each other"
            # the peer presses play: the band starts, on Link's bar phase
            peer.link.playing = True
            assert wait_for(lambda: s.snapshot().playing, 10.0), s.snapshot().notices
            assert s.sync.beat_lock is not None and s.sync.beat_lock.offset % 4 == 0
            time.sleep(1.5)
            assert s.snapshot().playing and peer.link.playing
            # the peer presses stop: the band stops
            peer.link.playing = False
            assert wait_for(lambda: not s.snapshot().playing, 10.0)
            # LiveBand's play starts the peer's transport, its stop stops it
            s.play()
            assert wait_for(lambda: peer.link.playing, 5.0)
            time.sleep(1.5)  # Link reports the start back: it neither restarts nor stops the band
            assert s.snapshot().playing and s.generator is not None and s.generator.error is None
            s.stop()
            assert wait_for(lambda: not peer.link.playing, 5.0)
            time.sleep(1.0)
            assert not s.snapshot().playing
            # a start at once undone by a stop: the stale report does not start the band
            s.play()
            s.stop()
            time.sleep(1.5)
            assert not s.snapshot().playing and not peer.link.playing, s.sync.link.num_peers  # 1: no other Link app
            # off Link, a peer's play is none of the band's business
            s.set_sync("internal")
            peer.link.playing = True
            time.sleep(1.0)
            assert not s.snapshot().playing
    finally:
        peer.close()
