"""Machine stall watch for the audio soak: is a missed callback ours, or the machine's?

``python -m liveband.bench.stallwatch CPU SECONDS OUT`` (or until SIGTERM) pins itself to one
CPU, asks for SCHED_FIFO (see PRIORITY), sleeps 2 ms at a time and writes every wake-up
that came more than ``STALL_S`` late to OUT (one "monotonic_start gap_ms" per line).
A real-time thread that sleeps on its CPU can only wake that late when the CPU ran
nothing of ours (beyond a callback's fraction of a millisecond) for that long: the
hypervisor took the virtual CPU away, or the kernel ran with preemption off. When every
CPU saw such a gap over an xrun's silent stretch, no user-space audio code (Python or
C) could have filled that buffer.

It is a separate process so the watch never waits for our GIL. Linux only; without
the right to real-time scheduling it still runs but then also measures ordinary
preemption, and says so on its first line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STALL_S = 0.003  # a 2 ms sleep that took this much longer than asked is a stall
SLEEP_S = 0.002
# Below the callback (70) and libpulse's thread (69), so the watch never delays them;
# above PulseAudio's own real-time threads (5) and everything else. Our audio threads
# run well under STALL_S at a time, so a stall is still the CPU gone.
PRIORITY = 60


def watch(cpu: int, seconds: float, out: str) -> None:
    """Record late wake-ups on ``cpu`` for ``seconds`` into ``out``. Thread: main of
    its own process."""
    realtime = True
    try:
        os.sched_setaffinity(0, {cpu})
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except (OSError, AttributeError, ValueError):
        realtime = False
    gaps: list[tuple[float, float]] = []
    prev = time.monotonic()
    end = [prev + seconds]
    signal.signal(signal.SIGTERM, lambda *_: end.__setitem__(0, 0.0))  # stop, then write
    while prev < end[0]:
        time.sleep(SLEEP_S)
        now = time.monotonic()
        if now - prev > SLEEP_S + STALL_S:
            gaps.append((prev, now - prev))
        prev = now
    with open(out, "w") as f:
        f.write(f"# cpu {cpu} realtime {int(realtime)}\n")
        f.writelines(f"{a:.6f} {1000.0 * g:.3f}\n" for a, g in gaps)


def read(path: str) -> tuple[bool, list[tuple[float, float]]]:
    """(realtime, [(start monotonic s, gap ms)]) from a watch file; (False, []) when
    it is missing or unreadable."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return False, []
    if not lines or not lines[0].startswith("# cpu"):
        return False, []
    realtime = lines[0].rstrip().endswith("1")
    gaps = []
    for line in lines[1:]:
        try:
            a, g = line.split()
            gaps.append((float(a), float(g)))
        except ValueError:
            continue
    return realtime, gaps


def start(folder: str, seconds: float) -> list[tuple[subprocess.Popen, str]]:
    """A watcher per CPU this process may run on, each writing ``folder``/stallsN.txt,
    for at most ``seconds``; started before the session so that their start-up (a fork,
    an interpreter) is not part of what is measured. ``collect`` stops them."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return [
        (
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "liveband.bench.stallwatch",
                    str(c),
                    str(seconds),
                    os.path.join(folder, f"stalls{c}.txt"),
                ],
                cwd=root,
            ),
            os.path.join(folder, f"stalls{c}.txt"),
        )
        for c in cpus
    ]


def collect(
    watchers: list[tuple[subprocess.Popen, str]], t_start: float, seconds: float
) -> tuple[list[list[tuple[float, float]]], list[bool]]:
    """Stop the watchers and read them: per CPU, the stalls that began within ``seconds``
    from ``t_start`` (monotonic), and whether each watcher ran real-time."""
    stalls, realtime = [], []
    for proc, path in watchers:
        proc.terminate()  # it writes its file on SIGTERM
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        rt, gaps = read(path)
        stalls.append([(a, g) for a, g in gaps if t_start <= a <= t_start + seconds])
        realtime.append(rt)
    return stalls, realtime


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
