"""`liveband bench model`: per-step latency of the streaming accompanist and memory growth.

For each backend that runs here (torch-cpu, onnx-cpu; torch-cuda and onnx-cuda when a GPU
is present) one session is streamed for 1e5 steps (``--quick``: 1e3) through
``Accompanist.advance`` -- the call the engine makes once per 16th note, including the
pattern bookkeeping and a greedy sampler -- with, every ``PLAN_EVERY`` steps, the live
engine's plan (a greedy rollout of a beat from a saved copy of the state, the piano roll's
tentative notes), and the latency of the steps just before positions 1e2, 1e3, 1e4 and
1e5 is reported as p50/p99 in milliseconds (planning included; ``advance_p99_ms`` and
``plan_p99_ms`` apart), with the growth of the process's resident memory from step 1e3
to the end.

Targets (2-core CPU): p99 <= 5 ms; p50 at 1e5 within 10 % of p50 at 1e3; RSS growth < 5 MB.
Because the load of a shared machine drifts over the long run, the flatness is also
checked paired: steps past 1e5 taken in turns with a fresh session's first 1e3 steps.

``sampler``: what the app's own sampler (``ControlledSampler`` at its defaults: harmony
follow, melody recall) adds to each step, which the greedy sampler above leaves out: the
melody heard, a chord draw and three voice draws, p50/p99 in microseconds, timed once the
recall's memory is full and on a melody of repeated 4-bar phrases (so the recall matches,
as in a song).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from models.contract import PLAN_EVERY, Accompanist
from models.sampling import greedy

if TYPE_CHECKING:
    from models.runtime import LoadedModel

POSITIONS = (100, 1_000, 10_000, 100_000)
SAMPLE = 1000  # steps measured before each position (fewer before 1e2)
TARGET_P99_MS = 5.0


def bench_backend(lm: LoadedModel, backend: str, positions: tuple[int, ...]) -> dict[str, Any]:
    import psutil

    from models.tokens import HOLD, NOTE_BASE, bar_steps

    acc = lm.accompanist(backend=backend)
    acc.reset("pop", "4/4")
    bar = bar_steps("4/4")
    total = max(positions)
    lat = np.zeros(total, dtype=np.float64)
    lat_advance = np.zeros(total, dtype=np.float64)
    plan_ms = np.zeros(total // PLAN_EVERY + 1, dtype=np.float64)  # preallocated: RSS measures the model
    held = [HOLD] * 4  # a beat of 4/4, the melody assumed held
    proc = psutil.Process()
    rng = np.random.default_rng(0)
    melody = np.where(rng.random(total) < 0.3, NOTE_BASE + 60 + rng.integers(0, 12, total), HOLD)
    rss_start = None
    for t in range(total):
        t0 = time.perf_counter()
        acc.advance(int(melody[t]), t % bar, greedy)
        t1 = time.perf_counter()
        if t % PLAN_EVERY == 0:
            acc.plan(held, (t + 1) % bar, greedy)
            plan_ms[t // PLAN_EVERY] = (time.perf_counter() - t1) * 1e3
        lat[t] = time.perf_counter() - t0
        lat_advance[t] = t1 - t0
        if t + 1 == min(1_000, total):
            rss_start = proc.memory_info().rss
    rss_end = proc.memory_info().rss
    paired = _paired_positions(lm, backend, acc, melody, min(SAMPLE, positions[1]), bar, total)
    out: dict[str, Any] = {"p50_ms": {}, "p99_ms": {}, "max_ms": {}}
    for p in positions:
        window = lat[max(10, p - SAMPLE) : p] * 1e3  # the first steps include tracing/warm-up
        out["p50_ms"][str(p)] = round(float(np.percentile(window, 50)), 3)
        out["p99_ms"][str(p)] = round(float(np.percentile(window, 99)), 3)
        out["max_ms"][str(p)] = round(float(window.max()), 3)
    out["advance_p99_ms"] = round(float(np.percentile(lat_advance[10:] * 1e3, 99)), 3)
    out["plan_p99_ms"] = round(float(np.percentile(plan_ms[5 : (total - 1) // PLAN_EVERY + 1], 99)), 3)
    out["plan_every_steps"] = PLAN_EVERY
    out["paired_p50_ms"] = paired
    out["steps"] = total
    out["rss_growth_mb"] = round((rss_end - (rss_start or rss_end)) / 2**20, 3)
    step_model = acc.step_model
    out["providers"] = getattr(step_model, "providers", None)
    return out


def bench_sampler() -> dict[str, Any]:
    """The app's sampler's cost per 16th step (see the module docstring); random logits.
    The recall keeps between ``memory`` and twice that many steps (it drops the older half
    when full), so the timed steps are one such cycle, after the first ``memory``."""
    from models.sampling import ControlledSampler
    from models.tokens import HOLD, MELODY, NOTE_BASE, STREAMS, VOCAB_SIZES

    sampler = ControlledSampler(seed=0)
    fill = steps = sampler.recall.memory
    rng = np.random.default_rng(0)
    logits = [[rng.normal(0, 2, VOCAB_SIZES[s]).astype(np.float32) for s in range(len(STREAMS))] for _ in range(64)]
    phrases = [np.where(rng.random(64) < 0.3, NOTE_BASE + 60 + rng.integers(0, 12, 64), HOLD) for _ in range(4)]
    melody = np.concatenate([phrases[int(k)] for k in rng.integers(0, len(phrases), (fill + steps) // 64 + 1)])
    lat = np.zeros(fill + steps)
    matched = 0
    for t in range(fill + steps):
        row = logits[t % len(logits)]
        t0 = time.perf_counter()
        sampler.observe_melody(int(melody[t]))
        for s in range(len(STREAMS)):
            if s != MELODY:
                sampler(s, row[s])
        lat[t] = time.perf_counter() - t0
        matched += t >= fill and sampler.recall.matched
    us = lat[fill:] * 1e6
    return {
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
        "steps": steps,
        "recall_matched_share": round(matched / steps, 3),
    }


def _paired_positions(
    lm: LoadedModel, backend: str, old: Accompanist, melody: np.ndarray, n: int, bar: int, total: int
) -> dict[str, Any]:
    """p50 of ``n`` steps of the long session (past position ``total``) and of a fresh one
    (positions 10..n), taken in turns so both see the same machine load: on a shared CPU
    the load drifts over a 1e5-step run, so the plain per-position numbers can differ by
    more than the model does."""
    fresh = lm.accompanist(backend=backend)
    fresh.reset("pop", "4/4")
    lat = np.zeros((n, 2))
    for t in range(n):
        m = int(melody[t % len(melody)])
        for j, (acc, pos) in enumerate(((old, total + t), (fresh, t))):
            t0 = time.perf_counter()
            acc.advance(m, pos % bar, greedy)
            lat[t, j] = time.perf_counter() - t0
    keep = lat[10:] * 1e3  # the fresh session's first steps include warm-up
    return {f"{total}+": round(float(np.median(keep[:, 0])), 3), "fresh": round(float(np.median(keep[:, 1])), 3)}


def bench_model(
    checkpoint: str | None = None, quick: bool = False, backends: list[str] | None = None
) -> dict[str, Any]:
    import torch

    from models.runtime import load_model

    torch.set_num_threads(1)  # one small step at a time: extra OpenMP threads only add jitter
    lm = load_model(checkpoint)
    positions = POSITIONS[:2] if quick else POSITIONS
    if backends is None:
        backends = ["torch-cpu", "onnx-cpu"]
        if torch.cuda.is_available():
            backends += ["torch-cuda", "onnx-cuda"]
    result: dict[str, Any] = {
        "checkpoint": lm.source,
        "params": lm.model.num_params(),
        "window": lm.config.window,
        "pattern": lm.config.pattern.describe(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": __import__("os").cpu_count()},
        "backends": {},
        "sampler": bench_sampler(),
    }
    for b in backends:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()
            result["backends"][b] = bench_backend(lm, b, positions)
    lo, hi = str(positions[1]), str(positions[-1])
    result["targets"] = {
        b: {
            "p99_le_5ms": max(r["p99_ms"].values()) <= TARGET_P99_MS,
            "p50_flat_within_10pct": abs(r["p50_ms"][hi] - r["p50_ms"][lo]) <= 0.1 * r["p50_ms"][lo],
            "p50_flat_within_10pct_paired": _paired_flat(r["paired_p50_ms"]),
            "rss_growth_lt_5mb": r["rss_growth_mb"] < 5.0,
        }
        for b, r in result["backends"].items()
    }
    return result


def _paired_flat(paired: dict[str, Any]) -> bool:
    old, fresh = (v for k, v in paired.items() if k != "fresh"), paired["fresh"]
    flat: bool = abs(next(old) - fresh) <= 0.1 * fresh
    return flat


def main(args: argparse.Namespace) -> int:
    res = bench_model(getattr(args, "checkpoint", None), quick=bool(getattr(args, "quick", False)))
    print(json.dumps(res, indent=1))
    return 0
