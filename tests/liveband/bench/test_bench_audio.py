"""The audio soak's own arithmetic: which xruns the machine caused, and the probe tap."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from liveband.bench import gil, stallwatch
from liveband.bench.audio import AUDIBLE_THRESHOLD, PROBE_THRESHOLD, _Probe
from liveband.bench.audio_report import xruns_vs_stalls


def _blocks(times: list[float], xrun_at: list[int]) -> np.ndarray:
    b = np.zeros((len(times), 6))
    b[:, 1] = times
    b[xrun_at, 5] = 1.0
    return b


def test_an_xrun_counts_against_the_machine_only_when_a_stall_overlaps_its_silent_gap():
    # callbacks every 5 ms, then 40 ms of nothing before the xrun's callback at 10.060 s
    times = [10.000, 10.005, 10.010, 10.015, 10.020, 10.060, 10.065]
    blocks = _blocks(times, [5])
    before = [(9.000, 30.0)]  # a stall long before: not this xrun's
    during = [(10.025, 30.0)]  # 10.025-10.055, inside the 10.020-10.060 gap
    assert xruns_vs_stalls(blocks, [before, []])["on_any_cpu_stall"] == 0
    one = xruns_vs_stalls(blocks, [during, before])
    assert (one["on_any_cpu_stall"], one["on_all_cpus_stall"]) == (1, 0)
    both = xruns_vs_stalls(blocks, [during, [(10.030, 12.0)]])
    assert (both["on_any_cpu_stall"], both["on_all_cpus_stall"]) == (1, 1)
    assert both["longest_stall_ms"] == [30.0]


def test_the_stall_watch_runs_as_its_own_process_and_its_file_reads_back(tmp_path):
    out = tmp_path / "stalls.txt"
    cpu = min(os.sched_getaffinity(0))
    subprocess.run(
        [sys.executable, "-m", "liveband.bench.stallwatch", str(cpu), "0.3", str(out)], check=True, timeout=30
    )
    realtime, gaps = stallwatch.read(str(out))
    assert out.read_text().startswith(f"# cpu {cpu} realtime {int(realtime)}")
    assert all(g > 1000.0 * stallwatch.STALL_S for _, g in gaps)
    assert stallwatch.read(str(tmp_path / "missing.txt")) == (False, [])


def test_a_watcher_per_cpu_starts_and_stops_with_the_soak(tmp_path):
    """The audio soak and the app's (scripts/bench_ui.py) start and read them the same way."""
    import time

    watchers = stallwatch.start(str(tmp_path), 600.0)
    assert len(watchers) == len(os.sched_getaffinity(0))
    t0 = time.monotonic()
    time.sleep(0.5)
    stalls, realtime = stallwatch.collect(watchers, t0, 0.5)
    assert all(proc.poll() is not None for proc, _ in watchers)  # stopped, not left running
    assert len(stalls) == len(realtime) == len(watchers)
    assert all(t0 <= a <= t0 + 0.5 for cpu in stalls for a, _ in cpu)


def test_the_probe_finds_the_first_non_zero_sample_then_the_first_audible_one():
    probe = _Probe(None, 256)
    silent = np.zeros((256, 2), np.float32)
    probe.write(silent, 0)
    assert probe.quiet_since(256) >= 256
    probe.armed = True
    attack = np.zeros((256, 2), np.float32)
    attack[100:, 0] = np.geomspace(PROBE_THRESHOLD / 4, 0.1, 156)  # a rising onset
    probe.write(attack, 256)
    first = 256 + int(np.argmax(attack[:, 0] > PROBE_THRESHOLD))
    loud = 256 + int(np.argmax(attack[:, 0] > AUDIBLE_THRESHOLD))
    assert (probe.hit, probe.hit_audible) == (first, loud)
    assert first < loud and not probe.armed
    assert probe.quiet_since(512) == 1  # still sounding at the block's end


def test_the_gil_probe_names_what_another_thread_was_running_at_a_late_callback():
    """At a late callback the probe records where every other thread is; the summary
    counts the running ones (a thread parked in a wait is not a suspect)."""
    import threading

    stop = threading.Event()
    started = threading.Event()

    def busy_python_loop():
        started.set()
        x = 0
        while not stop.is_set():
            x += 1

    worker = threading.Thread(target=busy_python_loop, name="busy")
    parked = threading.Thread(target=stop.wait, name="parked")
    worker.start()
    parked.start()
    started.wait(5)
    events: list = []
    hook = gil.holder_probe(events)
    try:
        for _ in range(3):
            hook(0.0, 0.004)
    finally:
        stop.set()
        worker.join()
        parked.join()
    summary = gil.summary(events)
    assert summary["events"] == 3 and summary["over_5ms"] == 0
    running = summary["running_at_those_moments"]
    assert any(k.startswith("busy: ") and "busy_python_loop" in k for k in running), running
    assert not any(k.startswith("parked: ") for k in running), running


def test_an_xrun_after_small_blocks_looks_back_over_the_servers_buffer():
    # 2.7 ms blocks: three callbacks span 8 ms, less than a 10.7 ms server buffer; a stall
    # 12 ms before the flag emptied that buffer all the same
    times = [10.0000, 10.0027, 10.0053, 10.0080, 10.0107, 10.0133, 10.0160]
    blocks = _blocks(times, [6])
    stall = [[(10.0030, 4.0)]]  # 10.003-10.007: before the three callbacks, inside the buffer
    assert xruns_vs_stalls(blocks, stall)["on_any_cpu_stall"] == 0
    assert xruns_vs_stalls(blocks, stall, buffer_s=0.0107 + 0.0027)["on_any_cpu_stall"] == 1
