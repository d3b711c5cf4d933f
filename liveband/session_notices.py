"""What the player is told: lasting problems (by topic, until solved), recent happenings
(each for EVENT_SECONDS) and a brief confirmation ("take saved", CONFIRM_SECONDS).

Thread: any. Writers take a short lock; ``current()`` and ``confirmation()`` read one
tuple that is replaced whole, so the UI timer never waits."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

EVENT_SECONDS = 30.0  # a happening stays among the notices this long
CONFIRM_SECONDS = 4.0  # a confirmation ("take saved") this long


class Notices:
    def __init__(self, now: Callable[[], float] = time.monotonic, keep_events: int = 4) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._problems: dict[str, str] = {}
        self._events: collections.deque[tuple[float, str]] = collections.deque(maxlen=keep_events)
        self._published: tuple[tuple[float | None, str], ...] = ()  # (when, text); None: a lasting problem
        self._confirmation: tuple[float, str] = (0.0, "")

    def problem(self, topic: str, message: str | None) -> None:
        """A lasting problem under ``topic`` (one per topic); None: it is solved."""
        with self._lock:
            if message is None:
                self._problems.pop(topic, None)
            else:
                self._problems[topic] = message
            self._publish()

    def has(self, topic: str) -> bool:
        return topic in self._problems

    def happened(self, message: str) -> None:
        """Something the player should hear of; it leaves after EVENT_SECONDS."""
        with self._lock:
            self._events.append((self._now(), message))
            self._publish()

    def confirm(self, message: str) -> None:
        """A success: shown briefly as a confirmation, not as a notice."""
        self._confirmation = (self._now(), message)

    def current(self) -> tuple[str, ...]:
        """Problems first (in the order they arose), then the happenings still fresh."""
        now = self._now()
        return tuple(m for t, m in self._published if t is None or now - t < EVENT_SECONDS)

    def confirmation(self) -> str:
        t, message = self._confirmation
        return message if message and self._now() - t < CONFIRM_SECONDS else ""

    def _publish(self) -> None:
        self._published = tuple((None, m) for m in self._problems.values()) + tuple(self._events)
