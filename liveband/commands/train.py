"""`liveband train`: train the accompaniment model (single process or under torchrun)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from engine.errors import first_line
from liveband.cli import UserError


def _load_config(path: str | None):
    from models.train import TrainConfig

    if path is None:
        return TrainConfig()
    p = Path(path)
    try:
        return TrainConfig.from_dict(json.loads(p.read_text()))
    except FileNotFoundError:
        raise UserError(f"config file not found: {p}") from None
    except (json.JSONDecodeError, TypeError, KeyError, ValueError, RecursionError) as exc:
        raise UserError(f"{p}: bad training config ({first_line(exc)})") from None


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from models.data import default_data_dir, load_corpus
    from models.train import train

    cfg = _load_config(args.config)
    changes = {"seed": args.seed}
    if args.steps is not None:
        if args.steps < 1:
            raise UserError("--steps must be >= 1")
        changes["steps"] = args.steps
    cfg = replace(cfg, **changes)
    data = Path(args.data) if args.data else default_data_dir()
    if not data.is_dir():
        raise UserError(f"data folder not found: {data}")
    rank0 = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    corpus = load_corpus(data)
    summary = corpus.summary()
    if rank0:
        print(json.dumps({"corpus": summary}), flush=True)
    if not corpus.splits["train"]:
        raise UserError(f"{data}: no usable training songs ({summary['skipped']['count']} skipped)")
    if not 0 <= args.workers <= 64:
        raise UserError("--workers must be in 0..64")
    result = train(cfg, corpus.splits, args.out, resume=args.resume, device=args.device, workers=args.workers)
    if rank0:
        print(json.dumps({"train": result}), flush=True)
    return 0
