"""A Python tap behind the C mixer: the callback writes finished blocks into a ring, and
this hands them on to the tap from a thread of its own (or after each offline block)."""

from __future__ import annotations

import threading

import numpy as np

from engine.mixer_body import POST_CHUNK
from engine.ring import AudioRing

BRIDGE_S = 2.0  # seconds the ring holds
BRIDGE_POLL_S = 0.002


class TapBridge:
    """A Python tap (any object with ``write(block, clock)``) behind the C callback: the
    callback writes the finished blocks into ``ring`` and this hands them on, from its own
    thread while a stream plays (``start``), else from ``drain`` after each block.
    The tap sees the same blocks at the same clock samples, a few ms later. (A tap over
    BRIDGE_S behind loses blocks, counted in ``ring.overflows``, and the clocks it is
    given are then early by what was lost: for measuring and tests, not recording.)"""

    def __init__(self, tap, sample_rate: int, max_block: int) -> None:
        self.tap = tap
        self.ring = AudioRing(int(BRIDGE_S * sample_rate))
        self.ref = self.ring.native_ref()
        self._buf = np.zeros((min(POST_CHUNK, max_block), 2), dtype=np.float32)
        self._next = -1  # clock of the next frame to hand on
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def drain(self) -> None:
        """Hand every frame in the ring to the tap. Thread: one at a time (the bridge's
        own thread, or the offline caller of ``process``)."""
        ring = self.ring
        while True:
            if self._next < 0:
                if ring.first_time < 0:
                    return
                self._next = ring.first_time
            n = ring.read_into(self._buf)
            if n == 0:
                return
            self.tap.write(self._buf[:n], self._next)
            self._next += n

    def _run(self) -> None:
        while not self._stop.wait(BRIDGE_POLL_S):
            self.drain()
        self.drain()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="liveband-tap", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._stop.set()
            t.join(timeout=2.0)
