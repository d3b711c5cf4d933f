"""Who holds the GIL when the audio callback starts late (``LIVEBAND_BENCH_GIL=1`` in
`liveband bench audio`): at each late start, where every other thread is; then those
moments counted by the frame that was running, threads parked in a wait left out."""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import Callable

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def holder_probe(out: list) -> Callable[[float, float], None]:
    """A hook for ``AudioOut.slow_start_hook``: at each late callback, where every
    other thread is. The thread that held the GIL was made to drop it at its next
    bytecode check, so its frame is where it ran (or was descheduled) meanwhile."""
    me = threading.get_ident
    frames_of = sys._current_frames

    def hook(now: float, wait: float) -> None:
        names = {t.ident: t.name for t in threading.enumerate()}
        where = {}
        for tid, f in frames_of().items():
            if tid == me():
                continue
            # the innermost frame, and the innermost of ours (what called into the library)
            stack: list[str] = []
            frame: FrameType | None = f
            while frame is not None and len(stack) < 2:
                c = frame.f_code
                ours = c.co_filename.startswith(_REPO_ROOT)
                if not stack or ours:
                    path = os.path.relpath(c.co_filename, _REPO_ROOT) if ours else os.path.basename(c.co_filename)
                    stack.append(f"{path}:{frame.f_lineno} {c.co_name}")
                frame = frame.f_back
            where[names.get(tid, str(tid))] = stack
        out.append({"t": now, "wait_ms": round(1000.0 * wait, 3), "threads": where})

    return hook


def summary(events: list) -> dict:
    """Which thread/frame was running when the slow callbacks started, counted over the
    events, threads parked in a wait or sleep left out."""
    idle = ("wait", "sleep", "_wait_for_tstate_lock", "select", "poll", "get", "readline", "join")
    count: dict = {}
    for e in events:
        for name, stack in e["threads"].items():
            if stack and stack[0].split(" ")[-1] not in idle:
                key = f"{name}: " + " <- ".join(stack)
                count[key] = count.get(key, 0) + 1
    top = sorted(count.items(), key=lambda kv: -kv[1])[:12]
    return {
        "events": len(events),
        "over_5ms": sum(1 for e in events if e["wait_ms"] > 5.0),
        "running_at_those_moments": dict(top),
    }
