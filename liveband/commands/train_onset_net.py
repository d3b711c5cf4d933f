"""`liveband train-onset-net`: train the hum input's onset net (engine.pitch.onset_net).

Generates the sung clips and hums, trains for the given time and writes the weights
(safetensors). The bench (`liveband bench pitch`) is the measure that counts; see
docs/hum.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from liveband.cli import UserError


def main(args) -> int:
    import torch

    from engine.pitch.onset_net import WEIGHTS_PATH
    from liveband.bench.onset_net_train import OnsetNetConfig, train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    changes: dict = {"seed": args.seed}
    for key in ("clips", "hum_clips", "minutes", "lr"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    try:
        cfg = replace(OnsetNetConfig(), **changes)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    init = Path(args.init) if args.init else None
    if init is not None and not init.is_file():
        raise UserError(f"no such weights file: {init}")
    out = Path(args.out) if args.out else WEIGHTS_PATH
    if init is not None and out.resolve() == init.resolve():
        raise UserError("--out must not be the --init file (an output never overwrites an input)")
    report = train(cfg, out, lambda m: print(m, flush=True), init)
    print(f"wrote {out}", flush=True)
    print(json.dumps(report, indent=2))
    return 0
