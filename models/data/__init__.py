"""Corpus loaders, exact token encoding/decoding and the training corpus.

Public API (used by training, evaluation and tests):
``Piece``, ``LoadResult``, ``load_pop909``, ``load_nottingham``, ``load_jsb``,
``load_music21_folk``, ``transpose``, ``split_train_valid``, ``build_corpus``,
``decode_piece``, ``quantised_notes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.data.piece import LoadResult, Piece


def default_data_dir() -> Path:
    """Where the corpora live unless the user says otherwise: ../shared/data beside the
    project (the `train` and `eval` commands read it here)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


from models.data.corpus import build_corpus, load_corpus, split_train_valid, transpose  # noqa: E402
from models.data.encode import decode_chords, decode_piece  # noqa: E402
from models.data.jsb import load_jsb  # noqa: E402
from models.data.nottingham import load_nottingham  # noqa: E402
from models.data.pop909 import load_pop909  # noqa: E402


def load_music21_folk(limit: int | None = None) -> LoadResult:
    """music21's shipped folk tunes that carry chord symbols (see models.data.folk)."""
    from models.data.folk import load_music21_folk as _load

    return _load(limit)


def quantised_notes(
    source: str | Path, corpus: str, split: str | None = None, index: int | None = None
) -> dict[str, Any]:
    """The quantised, reduced notes of one source song, per note stream, computed without tokens.

    corpus "pop909": source = song folder; "nottingham": source = .mid file;
    "jsb": source = JSON path with ``split`` and ``index``.
    ``decode_piece(<loaded piece>) == quantised_notes(...)`` exactly.
    """
    from models.data import jsb, nottingham, pop909

    if corpus == "pop909":
        return pop909.quantise_song(source).notes
    if corpus == "nottingham":
        return nottingham.quantise_song(source).notes
    if corpus == "jsb":
        if split is None or index is None:
            raise ValueError("jsb needs split and index")
        return jsb.quantise_chorale(jsb.read_split(source, split)[index], f"jsb/{split}/{index}").notes
    raise ValueError(f"unknown corpus {corpus!r}")


__all__ = [
    "Piece",
    "LoadResult",
    "load_pop909",
    "load_nottingham",
    "load_jsb",
    "load_music21_folk",
    "transpose",
    "split_train_valid",
    "build_corpus",
    "load_corpus",
    "decode_piece",
    "decode_chords",
    "quantised_notes",
    "default_data_dir",
]
