"""The transformer: the streaming cache equals a full recompute, and online causality
holds both in the training forward and in streaming."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny_pieces import random_piece

from models.generate import TorchStepModel
from models.pattern import Pattern
from models.runtime import DEBUG_CONFIG, debug_model
from models.tokens import CHORD, CHORD_UNKNOWN, MELODY, PAD, VOCAB_SIZES
from models.transformer import KVCache, ModelConfig, Transformer

torch.set_num_threads(1)  # tiny ops: OpenMP threads only spin against each other on a shared CPU

CFG = ModelConfig(n_layer=2, n_head=2, d_model=32, window=12, n_sink=2, dropout=0.0)


def _rows(T, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 75, (1, T, 5), generator=g)
    meta = torch.stack([torch.randint(0, 3, (1, T), generator=g), torch.randint(0, 48, (1, T), generator=g)], -1)
    return tokens, meta


@pytest.mark.parametrize("window", [12, 7])
def test_streaming_ten_windows_equals_full_recompute(window):
    torch.manual_seed(0)
    model = Transformer(dataclasses.replace(CFG, window=window)).eval()
    T = 10 * window + 3
    tokens, meta = _rows(T)
    with torch.no_grad():
        full = model(tokens, meta)[0]  # (T, S, V)
    cache = KVCache(model.cfg)
    worst = 0.0
    for i in range(T):
        step = cache.step(model, tokens[0, i], meta[0, i])
        assert torch.equal(torch.isinf(step), torch.isinf(full[i]))
        finite = torch.isfinite(step)
        worst = max(worst, (step[finite] - full[i][finite]).abs().max().item())
    assert worst < 1e-4


def test_traced_step_model_matches_eager_and_reset_restarts():
    torch.manual_seed(1)
    model = Transformer(CFG).eval()
    tokens, meta = _rows(40, seed=3)
    sm = TorchStepModel(model)
    first = [sm.step(tokens[0, i].numpy(), meta[0, i].numpy()) for i in range(40)]
    with torch.no_grad():
        full = model(tokens, meta)[0].numpy()
    np.testing.assert_allclose(np.stack(first), full, atol=1e-4)
    sm.reset()
    again = sm.step(tokens[0, 0].numpy(), meta[0, 0].numpy())
    np.testing.assert_array_equal(again, first[0])


def test_window_bounds_the_context():
    """A token influences the next n_layer * (W - 1) rows (windows stack up through the
    layers, in the forward and in the cache alike) and nothing after them."""
    torch.manual_seed(2)
    model = Transformer(CFG).eval()
    tokens, meta = _rows(40)
    other = tokens.clone()
    other[0, 5] = (other[0, 5] + 7) % 70 + 1
    with torch.no_grad():
        a, b = model(tokens, meta)[0], model(other, meta)[0]
    reach = CFG.n_layer * (CFG.window - 1)
    assert not torch.allclose(a[5 + reach], b[5 + reach])  # the farthest row it reaches
    torch.testing.assert_close(a[6 + reach :], b[6 + reach :])  # beyond: exactly nothing


def test_logits_are_minus_inf_outside_each_vocabulary():
    model = Transformer(CFG).eval()
    tokens, meta = _rows(3)
    with torch.no_grad():
        logits = model(tokens, meta)[0, 0]
    for s, n in enumerate(VOCAB_SIZES):
        assert torch.isinf(logits[s, n:]).all() and torch.isinf(logits[s, PAD])
        assert torch.isfinite(logits[s, PAD + 1 : n]).sum() >= n - 2
    assert torch.isinf(logits[CHORD, CHORD_UNKNOWN])


PATTERNS = [
    Pattern("parallel"),
    Pattern("delay", delays=(0, 0, 1, 1, 1)),
    Pattern("flattened"),
    Pattern("parallel", lookahead=2),
    # offline teachers: the accompaniment of t hears the melody up to t + 4 / up to t
    Pattern("delay", delays=(0, 0, 1, 1, 1), lookahead=-4),
    Pattern("parallel", lookahead=0),
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.kind}-d{p.lookahead}")
def test_online_causality_in_training_forward(pattern):
    """Perturb the melody at steps >= t - d + 1: accompaniment logits for steps <= t
    are unchanged; some later logits do change (the test can fail)."""
    lm = debug_model(0, dataclasses.replace(DEBUG_CONFIG, pattern=pattern))
    piece = random_piece(48, seed=1)
    d, t = pattern.lookahead, 20
    tok = piece.tokens.copy()
    tok[t - d + 1 :, MELODY] = np.where(tok[t - d + 1 :, MELODY] >= 3, tok[t - d + 1 :, MELODY] + 2, 40)
    moved = dataclasses.replace(piece, tokens=tok)
    a, b = lm.cell_logits(piece), lm.cell_logits(moved)
    np.testing.assert_array_equal(a[: t + 1, 1:], b[: t + 1, 1:])
    assert not np.allclose(a[t + 1 :, 1:], b[t + 1 :, 1:])


class Forcing:
    """A sampler that plays back a given grid (teacher forcing) and records logits."""

    def __init__(self, acc, grid):
        self.acc, self.grid, self.logits = acc, grid, {}

    def __call__(self, stream, logits):
        t, s = self.acc.current_cell
        assert s == stream
        self.logits[(t, s)] = logits.copy()
        # a delay pattern samples some streams of t + 1 early; past the grid, play anything
        return int(self.grid[min(t, len(self.grid) - 1), s])


def _stream(lm, piece, grid=None):
    acc = lm.accompanist()
    acc.reset(piece.style, piece.meter)
    grid = piece.tokens if grid is None else grid
    forcing = Forcing(acc, grid)
    d = acc.lookahead
    if d < 0:  # an offline accompanist starts knowing the melody of its first -d steps
        acc.prime_melody([int(x) for x in grid[:-d, MELODY]])
    out = []
    for t in range(len(piece)):
        mel = int(grid[t - d, MELODY]) if 0 <= t - d < len(grid) else 1
        out.append(acc.advance(mel, int(piece.step_in_bar[t]), forcing))
    return np.array(out), forcing.logits


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.kind}-d{p.lookahead}")
def test_streaming_equals_teacher_forced_logits_and_is_causal(pattern):
    lm = debug_model(0, dataclasses.replace(DEBUG_CONFIG, pattern=pattern))
    piece = random_piece(3 * DEBUG_CONFIG.window + 5, seed=2)
    out, logits = _stream(lm, piece)
    np.testing.assert_array_equal(out, piece.tokens[:, 1:])  # forcing played the grid back
    full = lm.cell_logits(piece)
    for (t, s), lg in logits.items():
        # past the melody's end streaming hears REST where the teacher-forced grid has none
        if t < len(piece) and t - pattern.lookahead < len(piece):
            np.testing.assert_allclose(lg, full[t, s, : VOCAB_SIZES[s]], atol=1e-4)
    # causality while streaming: a different future melody leaves steps <= t untouched
    t, d = 25, pattern.lookahead
    grid = piece.tokens.copy()
    grid[t - d + 1 :, MELODY] = 60
    _, logits2 = _stream(lm, piece, grid)
    for (tt, s), lg in logits2.items():
        if tt <= t:
            np.testing.assert_array_equal(lg, logits[(tt, s)])
    assert any(not np.allclose(logits2[k], logits[k]) for k in logits if k[0] > t)


def test_pitch_class_embedding_shares_octaves_and_starts_as_a_no_op():
    from models.tokens import BASS, CHORD_BASE, HOLD, NOTE_BASE, chord_token
    from models.transformer import pitch_class_index

    cfg = dataclasses.replace(CFG, pitch_classes=True)
    idx = pitch_class_index(cfg).view(cfg.num_streams, cfg.max_vocab)
    assert idx[MELODY, NOTE_BASE + 60] == idx[MELODY, NOTE_BASE + 72] == MELODY * 13 + 0
    assert idx[BASS, NOTE_BASE + 61] == BASS * 13 + 1 and idx[BASS, HOLD] == BASS * 13 + 12
    assert idx[CHORD, chord_token(7, "min7")] == CHORD * 13 + 7 and idx[CHORD, CHORD_BASE - 1] == CHORD * 13 + 12
    torch.manual_seed(0)
    plain = Transformer(CFG).eval()
    with_pc = Transformer(cfg).eval()
    with_pc.load_state_dict(plain.state_dict(), strict=False)
    tokens, meta = _rows(20)
    with torch.no_grad():
        torch.testing.assert_close(with_pc(tokens, meta), plain(tokens, meta))
