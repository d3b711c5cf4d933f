"""Controls from MIDI: actions that MIDI asks for run on one control thread.

``ControlThread``: MIDI arrives on rtmidi's thread (on JACK, inside the server's process
callback), where play/stop (building a generator, closing a take) must never run: a
handler there only submits the action, and this thread runs them in order.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable


class ControlThread:
    """Runs submitted callables one at a time on a daemon thread started on first use;
    an action's exception is kept in ``errors`` (the last few) and never stops the thread.
    Thread: ``submit`` any; ``close`` owner."""

    def __init__(self, name: str = "liveband-control", on_error: Callable[[str], None] | None = None) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.on_error = on_error
        self.errors: list[str] = []

    def submit(self, action: Callable[[], None]) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
        self._q.put(action)

    def _run(self) -> None:
        while True:
            action = self._q.get()
            if action is None:
                return
            try:
                action()
            except Exception as exc:
                msg = f"MIDI control failed: {exc}"
                self.errors = [*self.errors[-7:], msg]
                if self.on_error is not None:
                    self.on_error(msg)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once everything submitted so far has run (tests)."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        t = self._thread
        if t is not None:
            self._q.put(None)
            t.join(timeout)
