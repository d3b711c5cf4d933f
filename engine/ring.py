"""A single-producer / single-consumer ring of stereo float32 audio frames.

The audio callback writes finished blocks (``write``), a writer thread drains them
(``read_into``). ``write`` never blocks and allocates no arrays: a block that does not
fit whole is refused and counted in ``overflows`` (it is better to lose a block of the
recording than to stall the callback). Like ``engine.events.EventQueue``, the producer
fills the slots before publishing the new write index, so the consumer never reads a
half-written block. The counters live in an int64 array (one aligned 8-byte store each)
so that the C audio callback (engine/native) can be the producer without the GIL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.native import Ring


class AudioRing:
    """Ring of (capacity, 2) float32 frames. Thread: ``write`` by one producer (audio),
    ``read_into``/``available`` by one consumer (writer thread)."""

    def __init__(self, capacity_frames: int) -> None:
        if capacity_frames <= 0:
            raise ValueError("capacity must be positive")
        self._buf = np.zeros((int(capacity_frames), 2), dtype=np.float32)
        self._cap = int(capacity_frames)
        # frames ever written (producer only), frames ever read (consumer only), blocks
        # refused because the ring was full, their frames, and the audio-clock sample of
        # the first frame written (-1: none yet)
        self._idx = np.array([0, 0, 0, 0, -1], dtype=np.int64)

    _write = property(lambda self: int(self._idx[0]), lambda self, v: self._idx.__setitem__(0, v))
    _read = property(lambda self: int(self._idx[1]), lambda self, v: self._idx.__setitem__(1, v))
    overflows = property(lambda self: int(self._idx[2]), lambda self, v: self._idx.__setitem__(2, v))
    dropped_frames = property(lambda self: int(self._idx[3]), lambda self, v: self._idx.__setitem__(3, v))
    first_time = property(lambda self: int(self._idx[4]), lambda self, v: self._idx.__setitem__(4, v))

    def native_ref(self) -> Ring:
        """This ring as engine.native.Ring (the C callback as producer). The caller keeps
        the ring alive while C uses it."""
        from engine.native import Ring

        return Ring(self._buf.ctypes.data, self._cap, self._idx.ctypes.data)

    @property
    def capacity(self) -> int:
        return self._cap

    def available(self) -> int:
        n: int = self._write - self._read
        return n

    def write(self, block: np.ndarray, time: int = 0) -> bool:
        """Append a (frames, 2) float32 block whole, or refuse it. ``time`` is the
        block's first sample on the audio clock (remembered for the first block, so the
        consumer knows where its audio starts). Thread: producer."""
        if self.first_time < 0:
            self.first_time = time
        n = block.shape[0]
        w = self._write
        if n > self._cap - (w - self._read):
            self.overflows += 1
            self.dropped_frames += n
            return False
        start = w % self._cap
        first = min(n, self._cap - start)
        self._buf[start : start + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self._write = w + n  # publish after the frames are in place
        return True

    def read_into(self, out: np.ndarray) -> int:
        """Move up to len(out) frames into ``out``; returns how many. Thread: consumer."""
        r = self._read
        n = min(out.shape[0], self._write - r)
        if n <= 0:
            return 0
        start = r % self._cap
        first = min(n, self._cap - start)
        out[:first] = self._buf[start : start + first]
        if first < n:
            out[first:n] = self._buf[: n - first]
        self._read = r + n
        moved: int = n
        return moved
