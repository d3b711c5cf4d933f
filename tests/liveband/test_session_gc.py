"""Automatic garbage collection is off while the output stream plays (a collection of
everything could hold the GIL past a block), so the session collects the young garbage
itself, off the audio callback, and freezes a burst of new objects instead of scanning it.
Real session on a real (software) PulseAudio server."""

from __future__ import annotations

import gc
import threading
import time
import weakref

from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session


class Node:
    pass


def cyclic_garbage(freed: threading.Event) -> None:
    """Two objects that only reference each other: only the collector can free them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    weakref.finalize(a, freed.set)


def test_garbage_made_while_the_stream_plays_is_collected(pulse_server, liveband_home):
    with Session(EngineConfig(), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        assert s.prepare(timeout=120)
        assert not gc.isenabled()  # the stream holds automatic collection off
        freed = threading.Event()
        cyclic_garbage(freed)
        assert freed.wait(10), "cyclic garbage made during play was never collected"
        assert not gc.isenabled()

        # a burst (a model or tracker loading) is frozen, not scanned: one scan of it held
        # the GIL for most of a second on a 2-core VM
        frozen = gc.get_freeze_count()
        burst = [[i] for i in range(100_000)]
        # (a young collection may catch the burst's last few thousand before it is frozen)
        deadline = time.monotonic() + 10
        while gc.get_freeze_count() < frozen + 90_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gc.get_freeze_count() >= frozen + 90_000
        del burst
        freed2 = threading.Event()
        cyclic_garbage(freed2)
        assert freed2.wait(10)  # and collection goes on after it
    assert gc.isenabled() and gc.get_freeze_count() == 0  # all given back at close
