"""`liveband bench model|engine|audio|pitch|sync`: each benchmark prints JSON.

The benches live in liveband/bench/ and are imported only when asked for."""

from __future__ import annotations

import argparse
import importlib

from liveband.cli import UserError

BENCHES = {
    "audio": "liveband.bench.audio",
    "pitch": "liveband.bench.pitch",
    "engine": "liveband.bench.engine",
    "sync": "liveband.bench.sync",
    "model": "liveband.bench.model",
}


def main(args: argparse.Namespace) -> int:
    name = BENCHES[args.what]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise UserError(f"the {args.what} benchmark is not part of this build yet ({name})") from None
    return int(module.main(args) or 0)
