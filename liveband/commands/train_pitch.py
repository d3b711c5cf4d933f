"""`liveband train-pitch`: fine-tune PESTO's encoder on generated sung clips (issue 18).

Prints progress and the per-hop pitch accuracy on fresh validation clips before and
after, then writes the weights (safetensors). The bench (`liveband bench pitch`) is the
measure that counts; see docs/hum.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from liveband.cli import UserError


def main(args) -> int:
    import torch

    from engine.pitch.weights import pesto_sung_path
    from liveband.bench.pitch_finetune import FinetuneConfig, run

    # one thread unless told otherwise: the machine is shared and the run is reproducible so
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    changes: dict = {"seed": args.seed, "train_voicing": not args.no_voicing}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.fresh_clips is not None:
        changes["fresh_clips"] = args.fresh_clips
    if args.init is not None:
        changes["init"] = args.init
    if args.lr is not None:
        changes["lr"] = args.lr
    try:
        if args.extra_conditions is not None:
            changes["extra_conditions"] = tuple(c.strip() for c in args.extra_conditions.split(",") if c.strip())
        if args.tempos is not None:
            changes["tempos"] = tuple(float(t) for t in args.tempos.split(",") if t.strip())
        cfg = replace(FinetuneConfig(), **changes)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = Path(args.out) if args.out else pesto_sung_path()
    report = run(cfg, out, lambda m: print(m, flush=True))
    print(f"wrote {out}", flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0
