"""Turns the session's health numbers into one sentence a player understands.

Pure logic over successive snapshots (no widgets), so it is unit-tested directly.
The session reports cumulative counters (xruns, late_steps); what matters to a player
is whether they are *still growing*, so the monitor looks at the last few seconds.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

OK, WARN, BAD = "ok", "warn", "bad"


@dataclass(frozen=True)
class Verdict:
    level: str  # OK | WARN | BAD
    message: str  # "" when all is well
    offer: int | None = None  # a buffer size to offer as an action (repeated dropouts)


def larger_blocksize(blocksize: int) -> int:
    """The next buffer size worth trying (power of two, at most 4096)."""
    return min(4096, max(64, blocksize * 2))


class HealthMonitor:
    """Feed it snapshots (Thread: UI); ``verdict`` says whether the machine keeps up.

    window_s: how far back counter growth is judged. cpu_limit: sustained CPU percent
    above which a warning appears before the band starts dropping notes. xrun_limit:
    dropouts within the window that turn a warning into "cannot keep up".
    """

    def __init__(
        self, window_s: float = 4.0, cpu_limit: float = 85.0, xrun_limit: int = 3, clock=time.monotonic
    ) -> None:
        self.window_s = window_s
        self.xrun_limit = xrun_limit  # dropouts within window_s that mean "cannot keep up"
        self.cpu_limit = cpu_limit
        self._clock = clock
        self._hist: deque[tuple[float, int, int, float]] = deque()  # (t, xruns, late_steps, cpu)

    def reset(self) -> None:
        self._hist.clear()

    def update(self, snap, blocksize: int) -> Verdict:
        now = self._clock()
        self._hist.append((now, int(snap.xruns), int(snap.late_steps), float(snap.cpu_percent)))
        while self._hist and now - self._hist[0][0] > self.window_s:
            self._hist.popleft()
        first = self._hist[0]
        new_xruns = int(snap.xruns) - first[1]
        new_late = int(snap.late_steps) - first[2]
        cpus = [h[3] for h in self._hist]
        cpu_avg = sum(cpus) / len(cpus)
        bigger = larger_blocksize(blocksize)
        if not snap.playing:
            return Verdict(OK, "")
        if new_late > 0 or snap.lead_ms < 0:
            return Verdict(
                BAD,
                "The band is falling behind the beat: this computer cannot generate fast "
                f"enough. Increase the buffer size to {bigger}, lower the tempo, or "
                "close other programs.",
            )
        if new_xruns >= self.xrun_limit:
            return Verdict(
                BAD,
                f"Audio dropouts ({new_xruns} in the last {self.window_s:.0f} s): increase "
                f"the buffer size from {blocksize} to {bigger} in Setup.",
                bigger if bigger > blocksize else None,
            )
        if new_xruns > 0:
            return Verdict(
                WARN,
                f"An audio dropout just now; if you hear more, increase the buffer size "
                f"from {blocksize} to {bigger} in Setup.",
            )
        if cpu_avg > self.cpu_limit:
            return Verdict(
                WARN,
                f"CPU is at {cpu_avg:.0f}%: dropouts are likely. A larger buffer "
                f"({bigger}) or closing other programs gives the band room.",
            )
        if 0 <= snap.lead_ms < 5:
            return Verdict(
                WARN, f"The band is only just keeping up with the beat; a larger buffer ({bigger}) gives it more room."
            )
        return Verdict(OK, "")
