"""The band's transport: whether it is ready, play and stop, and an outside transport
followed (a MIDI clock's start/stop/continue, an Ableton Link peer's play/stop) through
the same play and stop.

Play and stop change the band and the tempo sync together under the session lock; a
model still loading is waited for before the lock is taken, so the UI's other calls are
never held up by a load. Thread: UI (play, stop), control (follow), any (prepare)."""

from __future__ import annotations

import threading
import time

from liveband.session_audio import SessionAudio
from liveband.session_band import Band
from liveband.session_sync import TempoSync


class Transport:
    def __init__(
        self,
        lock: threading.RLock,
        band: Band,
        sync: TempoSync,
        audio: SessionAudio,
        tracker_loader: threading.Thread,
    ) -> None:
        """``tracker_loader``: the pitch tracker's load, waited for by ``prepare`` after
        the model's (``band.loader``)."""
        self._lock, self._band, self._sync, self._audio = lock, band, sync, audio
        self._loaders = (band.loader, tracker_loader)

    def prepare(self, timeout: float | None = None) -> bool:
        """Wait for the loads (Session.prepare); True when ready."""
        end = None if timeout is None else time.monotonic() + timeout
        for loader in self._loaders:
            loader.join(None if end is None else max(0.0, end - time.monotonic()))
        ready = not any(loader.is_alive() for loader in self._loaders)
        if ready:
            self._audio.settle_garbage()  # the loads' objects frozen, not left to mix with later garbage
        return ready

    def play(self) -> None:
        self._band.loader.join()  # the model loads in the background: not under the lock
        with self._lock:
            self._band.play()
            if self._band.playing:
                self._sync.band_started()

    def stop(self) -> None:
        with self._lock:
            self._band.stop()
            self._sync.band_stopped()

    def follow(self, kind: str) -> None:
        """A followed MIDI clock's start/stop/continue, or a Link peer's play/stop ("link
        start"/"link stop"). Thread: control."""
        if kind.startswith("link "):
            if kind == "link start":
                self._band.loader.join()  # a model still loading: not under the lock
            with self._lock:  # the band's play/stop and Link's state change together
                if not self._sync.link_wants(kind):
                    return
                if kind == "link start" and not self._band.playing:
                    self.play()
                elif kind == "link stop" and self._band.playing:
                    self.stop()
            return
        if kind == "stop":
            self.stop()
            return
        if kind == "start" or not self._band.playing:
            self._sync.clock_in.wait_tempo(2.0)  # a start usually comes before its first ticks
            self.stop()  # a start while playing: from the top
            self.play()
