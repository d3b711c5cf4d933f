"""Which stream pattern? Short, equal-budget training runs of a small model per pattern.

For each pattern: validation NLL per target token (every grid cell is a target exactly
once in every pattern, so the numbers compare), training wall time per frame, model
calls per frame at inference, and the melody lag each accompaniment stream gets.
Run: ``python -m liveband.bench.pattern_study [--steps N] [--out FILE]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

from models.pattern import Pattern
from models.tokens import STREAMS
from models.train import TrainConfig, train
from models.transformer import ModelConfig

CANDIDATES = {
    "parallel": Pattern("parallel"),
    "delay(chord first)": Pattern("delay", delays=(0, 0, 1, 1, 1)),
    "flattened": Pattern("flattened", order=(1, 2, 3, 4, 0)),
}


def study(
    corpus: dict[str, Any],
    steps: int = 100,
    window_frames: int = 64,
    seed: int = 0,
    names: list[str] | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Train each candidate for ``steps`` steps (equal frames) or, with ``seconds``, for
    that much wall time at a constant learning rate (equal compute)."""
    results = {}
    for name, pat in CANDIDATES.items():
        if names and name not in names:
            continue
        K = pat.frame_size
        mc = ModelConfig(n_layer=2, n_head=4, d_model=96, window=window_frames * K, n_sink=2, dropout=0.0, pattern=pat)
        cfg = TrainConfig(
            model=mc,
            steps=steps if seconds is None else 10**6,
            batch_size=8,
            crop_frames=128,
            lr=3e-3,
            warmup=20,
            min_lr_ratio=1.0 if seconds else 0.1,
            eval_every=10**9,
            eval_crops_per_style=24,
            ckpt_every=10**9,
            seed=seed,
        )
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            r = train(cfg, corpus, tmp, progress=False, max_seconds=seconds)
            secs = time.time() - t0
            import contextlib

            import torch

            from models.checkpoint import load_model_file
            from models.train import evaluate, fixed_valid_set

            r["last_valid"] = evaluate(
                load_model_file(f"{tmp}/model.safetensors"),
                fixed_valid_set(corpus["valid"], cfg),
                torch.device("cpu"),
                contextlib.nullcontext,
            )
        steps_done = r["step"]
        frames = steps_done * cfg.batch_size * cfg.crop_frames
        lag = pat.melody_lag()
        results[name] = {
            "valid_nll_per_token": {k: round(v, 4) for k, v in r["last_valid"].items()},
            "train_ms_per_frame": round(1000 * secs / frames, 3),
            "model_calls_per_frame": pat.calls_per_frame(),
            "melody_lag_frames": {STREAMS[s]: v for s, v in lag.items()},
            "params": r["params"],
            "steps": steps_done,
            "frames_trained": frames,
            "train_seconds": round(secs, 1),
        }
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--seconds", type=float, default=None, help="equal wall time instead of equal steps")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from models.data import build_corpus

    res = study(build_corpus(), steps=args.steps, names=args.only, seconds=args.seconds)
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
