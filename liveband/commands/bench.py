"""`liveband bench model|engine|audio|pitch`: each benchmark prints JSON.

Each bench lives beside the code it measures and is imported only when asked for."""
from __future__ import annotations

import argparse
import importlib

from liveband.cli import UserError

BENCHES = {
    "audio": "engine.bench_audio",
    "pitch": "engine.bench_pitch",
    "engine": "engine.bench_engine",
    "model": "models.bench",
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
