"""`liveband eval`: evaluate a checkpoint and print JSON (see models/evaluate.py for the
token-level metrics, models/listen.py and liveband/listening.py for the "listening" ones:
melody-in-chord, harmony now/late, clash, chord-length entropy and the perturbation
protocol on the band parts the engine renders, beside the songs' human part and the
rule-based floor).

With no --jsb/--pop909/--nottingham it measures the default held-out sets: JSB's "valid"
split of ../shared/data/jsb/Jsb16thSeparated.json, the POP909 validation songs of
../shared/data/pop909 (never trained on), and Nottingham validation tunes. Naming a set
evaluates only the sets named.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from liveband.cli import UserError
from models.data import default_data_dir


def _sets(args) -> dict:
    """Which sets to measure: {'jsb': path|None, 'pop909': path|None, 'pop909_only': str, 'nottingham': path|None}."""
    data = default_data_dir()
    default_jsb = data / "jsb" / "Jsb16thSeparated.json"
    default_pop = data / "pop909"
    default_nott = data / "nottingham"
    nott_arg = getattr(args, "nottingham", None)
    if args.jsb is None and args.pop909 is None and nott_arg is None:
        sets = {
            "jsb": default_jsb if default_jsb.is_file() else None,
            "pop909": default_pop if default_pop.is_dir() else None,
            "pop909_only": "valid",
            "nottingham": default_nott if default_nott.is_dir() else None,
        }
        if all(v is None for k, v in sets.items() if k != "pop909_only"):
            raise UserError(f"no evaluation data in {data}; pass --jsb FILE and/or --pop909 DIR")
        return sets
    sets = {"jsb": None, "pop909": None, "pop909_only": "all", "nottingham": None}
    if args.jsb is not None:
        p = Path(args.jsb)
        if not p.is_file():
            raise UserError(f"JSB file not found: {p}")
        sets["jsb"] = p
    if args.pop909 is not None:
        p = Path(args.pop909)
        if not p.is_dir():
            raise UserError(f"POP909 folder not found: {p}")
        sets["pop909"] = p
        # the project's own POP909 copy: measure only the songs training never sees
        if p.resolve() == default_pop.resolve():
            sets["pop909_only"] = "valid"
    if nott_arg is not None:
        p = Path(nott_arg)
        if not p.is_dir():
            raise UserError(f"Nottingham folder not found: {p}")
        sets["nottingham"] = p
    return sets


def _played_sampler(seed: int):
    """The sampler the app plays the model through, on its default controls (harmony-follow,
    density, creativity): "model_as_played" in the POP909 results is what a user hears."""
    from liveband.config import EngineConfig
    from models.sampling import ControlledSampler

    cfg = EngineConfig()
    return ControlledSampler(
        seed=seed, temperature=cfg.temperature, density=cfg.density, harmony_follow=cfg.harmony_follow
    )


def _offline_model(name: str | None, live_source: str):
    """The checkpoint an offline render plays (a LoadedModel; it hears the melody ahead), or
    None for 'none' or when no teacher is shipped (the live model is what a render plays)."""
    from pathlib import Path

    from models.runtime import default_offline_checkpoint, load_model

    if name is not None and name.strip().lower() == "none":
        return None
    path = Path(name) if name is not None else default_offline_checkpoint()
    if name is None and path.resolve() == Path(live_source).resolve():
        return None
    return load_model(path, device="cpu")


def main(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be >= 1")
    sets = _sets(args)
    from liveband.listening import listen_eval, model_source
    from liveband.paths import find_soundfont
    from models.evaluate import evaluate, finite_or_none
    from models.runtime import load_model

    try:
        soundfont = find_soundfont(None)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    model = load_model(args.checkpoint, device="cpu")
    n_params = sum(p.numel() for p in model.model.parameters())
    # loaded before the long work, so a bad file fails at once
    listening = sets["pop909"] is not None or sets["nottingham"] is not None
    offline = _offline_model(args.offline_checkpoint, model.source) if listening else None
    result = evaluate(
        model,
        jsb_path=sets["jsb"],
        jsb_split=args.split,
        pop909_dir=sets["pop909"],
        pop909_only=sets["pop909_only"],
        nottingham_dir=sets["nottingham"],
        limit=args.limit,
        seed=args.seed,
        played_sampler=_played_sampler,
        offline=offline,
    )
    if listening:
        result["listening"] = listen_eval(
            model,
            sets["pop909"],
            sets["nottingham"],
            limit=args.limit,
            seed=args.seed,
            sources={"offline": model_source(offline)} if offline is not None else {},
            soundfont=soundfont,
            pop909_only=sets["pop909_only"],
        )
    out = {"checkpoint": model.source, "parameters": int(n_params), "seed": args.seed, "limit": args.limit, **result}
    json.dump(finite_or_none(out), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
