"""The training corpus: all loaders together, the train/valid split, transposition, and a cache.

Splits (evaluation data is never trained on):
- POP909: every 10th song (numbers 5 mod 10: 005, 015, ...) is valid;
  `liveband eval --pop909` measures exactly these by default.
- JSB: the file's "train" split trains, its "valid" split validates (and is what
  `liveband eval --jsb` measures by default); "test" is held out and not in the file.
- Nottingham (and music21 folk, when used): ``split_train_valid`` by a hash of the name.

``build_corpus`` parses everything once and caches the result as one .npz under
``~/.cache/liveband/corpus`` (or ``$LIVEBAND_CACHE``/corpus), keyed by the data files'
paths, sizes and mtimes and by ``ENCODING_VERSION``; a later call loads it in about a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import onnxcache
from models.atomic import atomic_path
from models.data import jsb, nottingham, pop909
from models.data.piece import LoadResult, Piece
from models.tokens import CHORD, CHORD_BASE, NOTE_BASE, NOTE_STREAMS, QUALITIES

log = logging.getLogger(__name__)

# Bump when encoding rules change, so stale caches are not reused.
ENCODING_VERSION = 1
JSB_FILE = Path("jsb") / "Jsb16thSeparated.json"
SPLITS = ("train", "valid")


def transpose(piece: Piece, semitones: int) -> Piece | None:
    """The piece moved by ``semitones``: note-ons shift, chord roots rotate, HOLD/REST stay.

    Returns None when any pitch would leave 0..127.
    """
    if semitones == 0:
        return piece
    tok = piece.tokens.astype(np.int32)
    for s in NOTE_STREAMS:
        col = tok[:, s]
        on = col >= NOTE_BASE
        if on.any():
            p = col[on] - NOTE_BASE + semitones
            if p.min() < 0 or p.max() > 127:
                return None
            col[on] = p + NOTE_BASE
    ch = tok[:, CHORD]
    lab = ch >= CHORD_BASE
    if lab.any():
        root, q = np.divmod(ch[lab] - CHORD_BASE, len(QUALITIES))
        ch[lab] = CHORD_BASE + ((root + semitones) % 12) * len(QUALITIES) + q
    return Piece(piece.name, piece.style, piece.meter, tok.astype(np.int16), piece.step_in_bar)


def _unit_hash(name: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_train_valid(pieces: list[Piece], valid_fraction: float, seed: int = 0) -> tuple[list[Piece], list[Piece]]:
    """Deterministic split by a hash of each piece's name: the same name always lands on the
    same side for a given seed and fraction, whatever the order or the other pieces."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    train: list[Piece] = []
    valid: list[Piece] = []
    for p in pieces:
        (valid if _unit_hash(p.name, seed) < valid_fraction else train).append(p)
    return train, valid


@dataclass
class Corpus:
    """Parsed corpus: pieces per split and every skipped song with its reason."""

    splits: dict[str, list[Piece]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for split, pieces in self.splits.items():
            by_style: dict[str, int] = {}
            for p in pieces:
                by_style[p.style] = by_style.get(p.style, 0) + 1
            out[split] = {"pieces": len(pieces), "steps": int(sum(len(p) for p in pieces)), "by_style": by_style}
        reasons: dict[str, int] = {}
        for _, r in self.skipped:
            reasons[r.split(":")[0]] = reasons.get(r.split(":")[0], 0) + 1
        out["skipped"] = {"count": len(self.skipped), "reasons": reasons}
        return out


def default_cache_dir() -> Path:
    """The encoded corpus's folder in LiveBand's one cache (models.onnxcache)."""
    return onnxcache.cache_dir("corpus")


def _source_files(data_dir: Path) -> list[Path]:
    files: list[Path] = []
    pop = data_dir / "pop909"
    if pop.is_dir():
        for d in sorted(pop.iterdir()):
            if d.is_dir():
                files.extend(sorted(f for f in d.iterdir() if f.is_file()))
    nott = data_dir / "nottingham"
    if nott.is_dir():
        try:
            files.extend(nottingham.midi_files(nott))
        except FileNotFoundError:
            pass
    if (data_dir / JSB_FILE).is_file():
        files.append(data_dir / JSB_FILE)
    return files


def cache_key(data_dir: Path, valid_fraction: float, seed: int, include_folk: bool) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [ENCODING_VERSION, valid_fraction, seed, include_folk, pop909.VALID_EVERY, pop909.VALID_REMAINDER]
        ).encode()
    )
    for f in _source_files(data_dir):
        st = f.stat()
        h.update(f"{f.relative_to(data_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def parse_corpus(
    data_dir: str | Path, valid_fraction: float = 0.1, seed: int = 0, include_folk: bool = False
) -> Corpus:
    """Parse every corpus found under ``data_dir`` (no cache). Raises FileNotFoundError if none."""
    data_dir = Path(data_dir)
    corpus = Corpus()
    found = False

    def take(res: LoadResult) -> list[Piece]:
        corpus.skipped.extend(res.skipped)
        return res.pieces

    if (data_dir / "pop909").is_dir():
        found = True
        for p in take(pop909.load_pop909(data_dir / "pop909")):
            corpus.splits["valid" if pop909.is_valid_song(p.name) else "train"].append(p)
    if (data_dir / "nottingham").is_dir():
        found = True
        tr, va = split_train_valid(take(nottingham.load_nottingham(data_dir / "nottingham")), valid_fraction, seed)
        corpus.splits["train"] += tr
        corpus.splits["valid"] += va
    if (data_dir / JSB_FILE).is_file():
        found = True
        corpus.splits["train"] += take(jsb.load_jsb(data_dir / JSB_FILE, "train"))
        corpus.splits["valid"] += take(jsb.load_jsb(data_dir / JSB_FILE, "valid"))
    if include_folk:
        from models.data.folk import load_music21_folk

        tr, va = split_train_valid(take(load_music21_folk()), valid_fraction, seed)
        corpus.splits["train"] += tr
        corpus.splits["valid"] += va
    if not found:
        raise FileNotFoundError(
            f"no corpus in {data_dir}: expected pop909/, nottingham/ or {JSB_FILE} (see ../shared/data/README.md)"
        )
    return corpus


def save_corpus(corpus: Corpus, path: Path) -> None:
    """Write the corpus to one .npz (atomic rename, so a crash never leaves a half file)."""
    pieces = [(s, p) for s in SPLITS for p in corpus.splits[s]]
    lengths = np.array([len(p) for _, p in pieces], dtype=np.int64)
    arrays = {
        "tokens": np.concatenate([p.tokens for _, p in pieces]) if pieces else np.zeros((0, 5), np.int16),
        "step_in_bar": np.concatenate([p.step_in_bar for _, p in pieces]) if pieces else np.zeros(0, np.int8),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]),
        "names": np.array([p.name for _, p in pieces], dtype=str),
        "styles": np.array([p.style for _, p in pieces], dtype=str),
        "meters": np.array([p.meter for _, p in pieces], dtype=str),
        "splits": np.array([SPLITS.index(s) for s, _ in pieces], dtype=np.int8),
        "skipped": np.array(json.dumps(corpus.skipped)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".tmp.npz") as tmp:  # .npz: savez appends it to any other name
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its bool flag


def load_cached_corpus(path: Path) -> Corpus:
    """Read a corpus written by ``save_corpus`` (no pickle). Raises ValueError if damaged."""
    try:
        with np.load(path, allow_pickle=False) as z:
            tokens, sib, off = z["tokens"], z["step_in_bar"], z["offsets"]
            names, styles, meters, splits = z["names"], z["styles"], z["meters"], z["splits"]
            skipped = [tuple(x) for x in json.loads(str(z["skipped"]))]
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"damaged corpus cache {path}: {exc}") from None
    corpus = Corpus(skipped=skipped)
    for i in range(len(names)):
        a, b = int(off[i]), int(off[i + 1])
        corpus.splits[SPLITS[int(splits[i])]].append(
            Piece(str(names[i]), str(styles[i]), str(meters[i]), tokens[a:b], sib[a:b])
        )
    return corpus


def load_corpus(
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    include_folk: bool = False,
    use_cache: bool = True,
) -> Corpus:
    """Parsed corpus with skip report, from the cache when the data files are unchanged."""
    if data_dir is None:
        from models.data import default_data_dir

        data_dir = default_data_dir()
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_dir}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"corpus-{cache_key(data_dir, valid_fraction, seed, include_folk)}.npz"
    if use_cache and path.is_file():
        try:
            return load_cached_corpus(path)
        except ValueError as exc:
            log.warning("%s; parsing again", exc)
    t0 = time.perf_counter()
    corpus = parse_corpus(data_dir, valid_fraction, seed, include_folk)
    log.info("parsed corpus in %.1f s: %s", time.perf_counter() - t0, corpus.summary())
    if use_cache:
        try:
            save_corpus(corpus, path)
        except OSError as exc:  # a read-only home must not stop training
            log.warning("could not write corpus cache %s: %s", path, exc)
    return corpus


def build_corpus(
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    include_folk: bool = False,
    use_cache: bool = True,
) -> dict[str, list[Piece]]:
    """{"train": [...], "valid": [...]} pieces of every corpus under ``data_dir``
    (default ../shared/data). See the module docstring for the splits and the cache."""
    return load_corpus(data_dir, cache_dir, valid_fraction, seed, include_folk, use_cache).splits
