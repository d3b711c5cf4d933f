"""Training: it learns, resumes exactly, survives bad config, and runs under torchrun (DDP)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_pieces import random_corpus, random_piece

from models.pattern import Pattern
from models.runtime import load_model
from models.train import TrainConfig, train
from models.transformer import ModelConfig

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]

TINY = TrainConfig(
    model=ModelConfig(
        n_layer=1,
        n_head=2,
        d_model=32,
        window=16,
        n_sink=2,
        dropout=0.1,
        pattern=Pattern("delay", delays=(0, 0, 1, 1, 1)),
    ),
    steps=6,
    batch_size=4,
    crop_frames=32,
    lr=3e-3,
    warmup=2,
    eval_every=3,
    eval_crops_per_style=2,
    ckpt_every=2,
    log_every=1,
)


def test_loss_goes_down_and_files_are_written(tmp_path):
    corpus = random_corpus()
    cfg = dataclasses.replace(TINY, steps=40, eval_every=20)
    result = train(cfg, corpus, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    vals = [x["valid"]["accomp"] for x in lines if "valid" in x]
    assert len(vals) == 2 and vals[-1] < vals[0]
    assert result["step"] == 40
    lm = load_model(tmp_path / "best.safetensors")  # a usable model checkpoint
    assert lm.config == cfg.model


def test_resume_continues_exactly(tmp_path):
    corpus = random_corpus()
    train(TINY, corpus, tmp_path / "straight", progress=False)
    train(TINY, corpus, tmp_path / "split", progress=False, stop_at=3)  # "interrupted"
    train(TINY, corpus, tmp_path / "split", resume=True, progress=False)
    a = load_file(str(tmp_path / "straight" / "state.safetensors"))
    b = load_file(str(tmp_path / "split" / "state.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        if k != "rng.torch":
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_resume_with_another_model_config_is_refused(tmp_path):
    from models.checkpoint import CheckpointError

    corpus = random_corpus()
    train(dataclasses.replace(TINY, steps=2), corpus, tmp_path, progress=False)
    other = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, d_model=48))
    with pytest.raises(CheckpointError, match="different model config"):
        train(other, corpus, tmp_path, resume=True, progress=False)


def test_train_config_validation_and_json():
    with pytest.raises(ValueError):
        TrainConfig(lr=5.0)
    with pytest.raises(ValueError):
        TrainConfig(style_weights=(("metal", 1.0),))
    cfg = TrainConfig.from_dict(json.loads(TINY.to_json()))
    assert cfg == TINY


def test_a_training_config_nested_thousands_deep_is_one_line(tmp_path, capsys):
    from liveband.cli import main

    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    assert main(["train", "--config", str(tmp_path / "deep.json"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "deep.json" in err and "bad training config" in err and len(err.splitlines()) == 1, err


def _jsb_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)

    def chorale(n):
        base = np.array([72, 64, 57, 48])
        steps, cur = [], base.copy()
        for t in range(n):
            if t % 4 == 0:
                cur = base + rng.integers(-3, 4, size=4)
            steps.append([int(x) for x in cur])
        return steps

    (root / "jsb").mkdir(parents=True)
    data = {"train": [chorale(64) for _ in range(4)], "valid": [chorale(48) for _ in range(2)]}
    (root / "jsb" / "Jsb16thSeparated.json").write_text(json.dumps(data))
    return root


def test_torchrun_two_processes_gloo(tmp_path):
    """`torchrun --nproc_per_node=2 -m liveband.cli train` on CPU (gloo), a few steps."""
    data = _jsb_folder(tmp_path / "data")
    cfg = json.loads(TINY.to_json())
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    env = {**os.environ, "LIVEBAND_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "liveband.cli",
            "train",
            "--data",
            str(data),
            "--config",
            str(cfg_path),
            "--out",
            str(out),
            "--steps",
            "4",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert [r["train"]["step"] for r in reports if "train" in r] == [4]  # rank 0 reports once
    assert load_model(out / "model.safetensors").config == TINY.model


def test_history_corruption_moves_accompaniment_inputs_only():
    from tiny_pieces import random_piece

    from models.tokens import CHORD, CHORD_BASE, MELODY, NOTE_BASE, QUALITIES
    from models.train import corrupt_history

    piece = random_piece(64, seed=5)
    inputs, targets = Pattern("delay", delays=(0, 0, 1, 1, 1)).model_rows(piece.tokens.astype(np.int64))
    for seed in range(10):
        x = inputs.copy()
        corrupt_history(x, np.random.default_rng(seed))
        np.testing.assert_array_equal(x[:, MELODY], inputs[:, MELODY])  # the melody is sacred
        changed = np.flatnonzero((x != inputs).any(axis=1))
        assert len(changed) > 0 and changed.max() - changed.min() + 1 <= len(x)
        # chords keep their quality and all move by one same interval
        c0, c1 = inputs[changed, CHORD], x[changed, CHORD]
        ok = c0 >= CHORD_BASE
        q0, q1 = (c0[ok] - CHORD_BASE) % len(QUALITIES), (c1[ok] - CHORD_BASE) % len(QUALITIES)
        np.testing.assert_array_equal(q0, q1)
        shift = {
            int(v) for v in ((c1[ok] - CHORD_BASE) // len(QUALITIES) - (c0[ok] - CHORD_BASE) // len(QUALITIES)) % 12
        }
        assert len(shift) == 1 and shift != {0}
        # HOLD / REST / PAD never change
        assert ((x != inputs) <= (inputs >= min(CHORD_BASE, NOTE_BASE))).all()


def test_chord_segment_corruption_gives_whole_segments_a_wrong_chord_and_moves_their_voices():
    from models.tokens import ALTO, BASS, CHORD, CHORD_BASE, HOLD, MELODY, NOTE_BASE, QUALITIES, TENOR, chord_token
    from models.train import chord_segments, corrupt_chord_segments

    pat = Pattern("delay", delays=(0, 0, 1, 1, 1))
    T = 64
    grid = np.zeros((T, 5), dtype=np.int64)
    grid[:, MELODY] = NOTE_BASE + 72
    roots = [0, 5, 7, 0]  # C F G C, one bar each
    for bar, r in enumerate(roots):
        sl = slice(16 * bar, 16 * bar + 16)
        grid[sl, CHORD] = chord_token(r, "maj")
        for s, off in ((BASS, 36), (TENOR, 52), (ALTO, 55)):
            grid[sl, s] = HOLD
            grid[16 * bar, s] = NOTE_BASE + off + r  # onset on the downbeat
    inputs, targets = pat.model_rows(grid)
    nq = len(QUALITIES)
    changed_any = False
    for seed in range(20):
        x = inputs.copy()
        corrupt_chord_segments(x, np.random.default_rng(seed), 0.5, pat)
        np.testing.assert_array_equal(x[:, MELODY], inputs[:, MELODY])  # the melody is sacred
        segs = chord_segments(inputs[:, CHORD])
        assert [b - a for a, b in segs] == [16, 16, 16, 16]
        for a, b in segs:
            new = set(x[a:b, CHORD].tolist())
            assert len(new) == 1  # a whole segment, one chord
            new_tok = new.pop()
            k = ((new_tok - CHORD_BASE) // nq - (int(inputs[a, CHORD]) - CHORD_BASE) // nq) % 12
            changed_any |= k != 0
            # the voices sounding that chord (one row later under this delay pattern) moved with it
            for s in (BASS, TENOR, ALTO):
                on = inputs[a + 1 : b + 1, s] >= NOTE_BASE
                moved = (x[a + 1 : b + 1, s][on] - inputs[a + 1 : b + 1, s][on]) % 12
                assert set(moved.tolist()) <= {k}
        assert ((x != inputs) <= (inputs >= min(CHORD_BASE, NOTE_BASE))).all()  # HOLD/REST/PAD kept
    assert changed_any


DDP_HARNESS = """
import datetime, json, os, sys
import torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "models"))
import models.train as T
from models.train import TrainConfig
from tiny_pieces import random_corpus

torch.set_num_threads(1)
rank = int(os.environ["RANK"])
# a short collective timeout: a rank left waiting fails in seconds instead of hanging
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=40))
cfg = TrainConfig.from_dict(json.loads(sys.argv[2]))
case, out = sys.argv[3], sys.argv[4]
kw = {}
if case == "clock":        # only rank 0's clock runs out (at once)
    kw["max_seconds"] = 0.0 if rank == 0 else None
elif case == "nan":        # only rank 1's loss turns NaN, at its third step
    real, calls = T.masked_nll, [0]
    def masked_nll(logits, targets):
        nll, mask = real(logits, targets)
        calls[0] += 1
        return (nll * float("nan") if rank == 1 and calls[0] == 3 else nll), mask
    T.masked_nll = masked_nll
try:
    res = T.train(cfg, random_corpus(), out, progress=False, **kw)
    print(json.dumps({"rank": rank, "step": res["step"]}), flush=True)
except FloatingPointError as exc:
    print(json.dumps({"rank": rank, "error": str(exc)}), flush=True)
"""


@pytest.mark.parametrize("case", ["clock", "nan"])
def test_ddp_ranks_stop_together_when_one_rank_decides(tmp_path, case):
    """Under DDP a stop that one rank decides alone (its max_seconds clock, a non-finite
    loss) must stop every rank at the same step, not leave the others in an all-reduce."""
    import signal

    harness = tmp_path / "harness.py"
    harness.write_text(DDP_HARNESS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(harness),
            str(ROOT),
            TINY.to_json(),
            case,
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the ranks hung")
    # two processes share the pipe: their lines may land back to back on one line
    reports = sorted(
        (
            json.loads("{" + x if not x.startswith("{") else x)
            for line in out.splitlines()
            if line.startswith("{")
            for x in line.replace("}{", "}\n{").splitlines()
        ),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in reports] == [0, 1], err[-2000:]
    if case == "clock":
        assert reports[0]["step"] == reports[1]["step"] == 0
    else:
        assert all("non-finite at step 3" in r.get("error", "") for r in reports), reports
    assert proc.returncode == 0, err[-2000:]


def test_distill_kl_is_zero_for_the_same_distribution_and_ignores_masked_ids():
    from models.train import distill_kl

    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 5, 7, generator=g)
    a[..., 5:] = float("-inf")  # outside the vocabulary in both
    b = torch.randn(2, 3, 5, 7, generator=g)
    b[..., 5:] = float("-inf")
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 0, 0] = False
    assert torch.allclose(distill_kl(a, a, mask), torch.zeros(2, 3, 5), atol=1e-6)
    kl = distill_kl(a, b, mask)
    assert torch.isfinite(kl).all() and (kl[mask] > 0).all() and kl[0, 0, 0] == 0


@pytest.mark.parametrize("on_policy", [False, True])
def test_distillation_pulls_an_online_student_toward_an_offline_teacher(tmp_path, on_policy):
    """The KL to a teacher that hears the melody a beat ahead falls as the student trains
    on it, whether the teacher reads the clean crop or the band history the student was
    given (its own draws, the corrupted history); the student keeps its own (online) pattern."""
    from models.checkpoint import save_model
    from models.transformer import Transformer

    torch.manual_seed(5)
    t_cfg = dataclasses.replace(TINY.model, pattern=Pattern("delay", lookahead=-4), dropout=0.0)
    teacher = Transformer(t_cfg)
    with torch.no_grad():  # a confident teacher: a flat one teaches little
        teacher.head.weight.mul_(40.0)
    save_model(teacher, tmp_path / "teacher.safetensors")
    cfg = dataclasses.replace(
        TINY,
        steps=30,
        eval_every=100,
        teacher=str(tmp_path / "teacher.safetensors"),
        distill_weight=1.0,
        distill_on_policy=on_policy,
        own_band_passes=1 if on_policy else 0,
        key_jump_prob=0.5 if on_policy else 0.0,
        jump_lag_steps=8,
    )
    train(cfg, random_corpus(), tmp_path / "run", progress=False)
    kls = [json.loads(x)["kl"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"kl"' in x]
    assert len(kls) == 30 and np.mean(kls[-5:]) < 0.9 * np.mean(kls[:5])
    assert load_model(tmp_path / "run" / "model.safetensors").config.pattern.lookahead == 1
    with pytest.raises(ValueError, match="teacher"):
        TrainConfig(distill_weight=1.0)


def test_on_policy_the_teacher_reads_the_band_history_the_student_played():
    """``rows_for`` puts the student's input rows into the teacher's pattern: on a clean
    crop they are the teacher's own rows of it (but for the crop's last position, which no
    row predicts from), and a token the student drew shows at its grid cell there."""
    from models.tokens import BASS, CHORD, PAD
    from models.train import Batcher, grid_index, rows_for

    t_pattern = Pattern("delay", lookahead=-4, delays=(0, 0, 1, 1, 1))
    cfg = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, pattern=Pattern("parallel", lookahead=1)))
    pieces = random_corpus()["train"] + [random_piece(20, seed=9)]  # one crop shorter than the rows
    batcher = Batcher(pieces, cfg, t_pattern)
    cpu = torch.device("cpu")
    s_idx, t_idx = grid_index(cfg.model.pattern, 32, cpu), grid_index(t_pattern, 32, cpu)
    for seed in range(3):
        inputs, _, targets, *_, t_inputs, _ = batcher.batch(np.random.default_rng(seed), 4, transpose=False)
        got = rows_for(inputs, targets, s_idx, t_idx, t_inputs.shape[1])
        ends = (t_inputs != PAD).any(-1).sum(1)  # rows holding a position (the all-PAD BOS row is not one)
        for b in range(4):
            n = int(ends[b]) + 1
            assert torch.equal(got[b, :n], t_inputs[b, :n]) and (got[b, n + 1 :] == PAD).all()
    drawn = inputs.clone()
    t = 10  # the student's own chord and bass of frame 10
    drawn[:, cfg.model.pattern.position(t, CHORD) + 1, CHORD] = 77
    drawn[:, cfg.model.pattern.position(t, BASS) + 1, BASS] = 55
    got = rows_for(drawn, targets, s_idx, t_idx, t_inputs.shape[1])
    assert (got[:, t_pattern.position(t, CHORD) + 1, CHORD] == 77).all()
    assert (got[:, t_pattern.position(t, BASS) + 1, BASS] == 55).all()
    assert int((got != rows_for(inputs, targets, s_idx, t_idx, t_inputs.shape[1])).sum()) == 2 * len(drawn)
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(distill_on_policy=True)


def test_key_jump_moves_every_stream_from_one_bar_line_on_by_the_same_interval():
    from models.data import Piece
    from models.tokens import CHORD, CHORD_BASE, HOLD, MELODY, NOTE_BASE, QUALITIES, chord_token
    from models.train import key_jump

    T = 16 * 6
    tokens = np.full((T, 5), HOLD, dtype=np.int16)
    tokens[::4, MELODY] = NOTE_BASE + 72
    tokens[::16, 2:] = NOTE_BASE + 48
    tokens[:, CHORD] = chord_token(0, "maj")
    piece = Piece("t/1", "pop", "4/4", tokens, (np.arange(T) % 16).astype(np.int8))
    seen_k, seen_bar = set(), set()
    for seed in range(40):
        out, _ = key_jump(piece, np.random.default_rng(seed))
        moved = np.flatnonzero((np.asarray(out.tokens) != tokens).any(axis=1))
        assert len(moved), seed
        bar = int(moved[0])
        # from a bar line after the first two bars (the old key heard first), to the end
        assert bar % 16 == 0 and 32 <= bar < T - 16
        on = tokens[bar:, MELODY] >= NOTE_BASE
        ks = set((out.tokens[bar:, MELODY][on] - tokens[bar:, MELODY][on]).tolist())
        ks |= set((out.tokens[bar:, 2:][tokens[bar:, 2:] >= NOTE_BASE] - NOTE_BASE - 48).tolist())
        assert len(ks) == 1, ks  # melody and voices by one interval
        k = ks.pop()
        assert 1 <= abs(k) <= 6
        root = (int(out.tokens[bar, CHORD]) - CHORD_BASE) // len(QUALITIES)
        assert root == k % 12  # the chords follow
        np.testing.assert_array_equal(out.tokens[:bar], tokens[:bar])  # the past untouched
        assert set(out.tokens[tokens == HOLD].tolist()) == {HOLD}
        seen_k.add(k)
        seen_bar.add(bar)
    assert len(seen_k) >= 6 and len(seen_bar) >= 2


def test_a_key_jump_config_out_of_range_is_refused():
    with pytest.raises(ValueError, match="key_jump_prob"):
        TrainConfig(key_jump_prob=1.5)
    with pytest.raises(ValueError, match="jump_lag_steps"):
        TrainConfig(jump_lag_steps=-1)


def test_after_a_key_jump_the_band_inputs_may_lag_in_the_old_key_while_the_targets_move():
    """The free-running situation after a singer's jump: the band's own history is still in
    the old key for a few steps while the melody has moved; the targets are the moved band,
    and those of the band there weigh jump_lag_weight in the loss."""
    from models.tokens import ACCOMP_STREAMS, MELODY
    from models.train import Batcher, lagging_band

    cfg = TrainConfig(crop_frames=96, key_jump_prob=1.0, jump_lag_steps=8, jump_lag_weight=3.0)
    b = Batcher(random_corpus(n=8, T=192)["train"], cfg)
    rng = np.random.default_rng(0)
    lags = set()
    band = list(ACCOMP_STREAMS)
    for _ in range(60):
        piece, lag = b.crop(rng, int(rng.integers(len(b.pieces))), transpose=True)
        if lag is None:
            continue
        tokens = np.asarray(piece.tokens)
        grid = lagging_band(*lag[:1], tokens, *lag[1:])
        diff = np.flatnonzero((grid != tokens).any(axis=1))
        np.testing.assert_array_equal(grid[:, MELODY], tokens[:, MELODY])  # the melody moved at once
        if len(diff):
            # one span of frames from the jump's bar line, band streams only
            assert piece.step_in_bar[diff[0]] == 0 and diff[-1] - diff[0] < 8
            assert (grid[diff][:, band] != tokens[diff][:, band]).any()
        lags.add(len(diff))
        inputs, _, targets, cell_w = b.rows_of(piece, lag=lag)
        plain_inputs, _, plain_targets, plain_w = b.rows_of(piece)
        np.testing.assert_array_equal(targets, plain_targets)  # the targets are the moved band
        assert (inputs != plain_inputs).any() == bool(len(diff))
        assert set(np.unique(plain_w)) == {1.0}
        heavy = cell_w == 3.0
        # the band's cells of the lag's frames, and nothing else
        assert heavy.sum() == lag[2] * len(band)
        assert not heavy[:, MELODY].any()
    assert max(lags) >= 4 and 0 in lags  # random lags, none at times


def test_some_crops_silence_the_melody_and_keep_the_band_as_the_arranger_player_hears_it():
    """A chords-only player: melody_rest_prob of the crops have a melody of rests only
    (inputs and targets), the band's streams are the song's own; the rest are untouched."""
    from models.tokens import ACCOMP_STREAMS, MELODY, REST
    from models.train import Batcher

    cfg = TrainConfig(crop_frames=64, melody_rest_prob=0.5)
    b = Batcher(random_corpus(n=6, T=128)["train"], cfg)
    plain = Batcher(b.pieces, TrainConfig(crop_frames=64))
    silent = sounding = 0
    for seed in range(40):
        piece, _ = b.crop(np.random.default_rng(seed), seed % len(b.pieces), transpose=True)
        tokens = np.asarray(piece.tokens)
        if (tokens[:, MELODY] == REST).all():
            silent += 1
            _, _, targets, _ = b.rows_of(piece)
            assert set(np.unique(targets[:, MELODY])) <= {0, REST}  # PAD or rest: nothing to sing
            assert (tokens[:, list(ACCOMP_STREAMS)] > REST).any()  # the band still plays
        else:
            sounding += 1
    assert silent >= 10 and sounding >= 10
    # without the option no crop loses its melody
    rng = np.random.default_rng(0)
    crops = [np.asarray(plain.crop(rng, i % len(plain.pieces), True)[0].tokens) for i in range(30)]
    assert not any((c[:, MELODY] == REST).all() for c in crops)
    with pytest.raises(ValueError, match="melody_rest_prob"):
        TrainConfig(melody_rest_prob=1.5)


def test_own_band_replaces_only_the_band_cells_of_the_lag_with_the_models_own_draws():
    """On-policy history after a jump: the band's input cells of the lag's frames become
    the model's own samples (near-greedy at a tiny temperature: its argmax given the
    previous pass), and nothing else of the inputs changes."""
    from models.tokens import ACCOMP_STREAMS, MELODY
    from models.train import Batcher, own_band, own_band_cells
    from models.transformer import Transformer

    cfg = dataclasses.replace(TINY, crop_frames=96, key_jump_prob=1.0, jump_lag_steps=12, own_band_passes=1)
    pattern = cfg.model.pattern
    cells = own_band_cells(pattern, 48, 16, 5)
    grid = pattern.revert(np.concatenate([cells[1:], cells[:1] & False]), 48)  # back to frames
    np.testing.assert_array_equal(np.flatnonzero(grid.any(axis=1)), np.arange(16, 21))
    assert not grid[:, MELODY].any() and grid[16:21][:, list(ACCOMP_STREAMS)].all()

    torch.manual_seed(0)
    model = Transformer(cfg.model).eval()
    b = Batcher(random_corpus(n=8, T=192)["train"], cfg)
    inputs, meta, _, _, own, _ = b.batch(np.random.default_rng(1), 6)
    assert own.any()
    out = own_band(model, inputs, meta, own, passes=1, temperature=1e-4)
    np.testing.assert_array_equal(out[~own], inputs[~own])
    greedy = model(inputs, meta).argmax(-1)  # (B, R, S): the draw for the next row
    np.testing.assert_array_equal(out[:, 1:][own[:, 1:]], greedy[:, :-1][own[:, 1:]])
    assert (out[own] != inputs[own]).any()  # an untrained model does not echo the data


def test_training_with_the_own_band_runs_and_learns(tmp_path):
    corpus = random_corpus()
    cfg = dataclasses.replace(
        TINY,
        steps=30,
        eval_every=15,
        key_jump_prob=0.5,
        jump_lag_steps=8,
        own_band_passes=2,
        own_band_prob=0.5,
        own_band_reward=1.0,
    )
    train(cfg, corpus, tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3
    with pytest.raises(ValueError):
        TrainConfig(own_band_passes=2)  # needs a lag to replace
    with pytest.raises(ValueError):
        TrainConfig(jump_lag_steps=8, own_band_prob=0.5)  # needs passes
    with pytest.raises(ValueError):
        TrainConfig(jump_lag_steps=8, own_band_reward=1.0)  # needs passes
    assert any("own_chord_reward" in x for x in lines)  # the reward is logged


def test_the_own_chord_reward_raises_chords_holding_the_melody_note_and_lowers_the_others():
    """One step of gradient descent on the policy-gradient term: the band drew C major
    where the melody sounds E (rewarded) and D major where it sounds E (not): C's
    probability at its row goes up, D's at its row goes down; rows outside the own-band
    cells or without a melody note count nothing."""
    from models.tokens import CHORD, MAX_VOCAB, chord_token
    from models.train import own_chord_reward

    C, D = chord_token(0, "maj"), chord_token(2, "maj")
    B, R, S = 1, 5, 5
    logits = torch.zeros(B, R, S, MAX_VOCAB, requires_grad=True)
    inputs = torch.zeros(B, R, S, dtype=torch.long)
    inputs[0, 1, CHORD], inputs[0, 2, CHORD], inputs[0, 3, CHORD] = C, D, C  # draws for rows 0, 1, 2
    cells = torch.zeros(B, R, S, dtype=torch.bool)
    cells[0, 1:3, CHORD] = True  # row 3's draw is the song's, not the band's
    melody_pc = torch.tensor([[4, 4, 4, -1, -1]])
    loss, reward = own_chord_reward(logits, inputs, cells, melody_pc)
    assert float(reward) == pytest.approx(0.5)
    loss.backward()
    g = logits.grad[0, :, CHORD]
    assert g[0, C] < 0 and g[1, D] > 0  # descent raises C at row 0, lowers D at row 1
    assert float(g[2].abs().sum()) == 0.0 and float(g[3:].abs().sum()) == 0.0
    empty, _ = own_chord_reward(logits, inputs, torch.zeros_like(cells), melody_pc)
    assert float(empty) == 0.0


def test_the_reward_can_count_only_melody_notes_the_chord_has_not_heard():
    """own_band_reward_new_only: at a chord step whose melody pitch class is the one the
    chord already hears (two 16ths before, in the delay pattern), nothing is
    rewarded; where the melody moves on, the new pitch class is."""
    from models.data import Piece
    from models.tokens import HOLD, MELODY, NOTE_BASE
    from models.train import Batcher

    cfg = dataclasses.replace(TINY, crop_frames=12)
    assert cfg.model.pattern.melody_lag()[1] == 2  # the chord hears the melody up to t - 2
    pieces = random_corpus(n=8, T=48)["train"]
    tokens = np.array(pieces[0].tokens[:12])
    C, D, E = (NOTE_BASE + p for p in (60, 62, 64))
    tokens[:, MELODY] = [C, HOLD, HOLD, HOLD, D, HOLD, E, HOLD, HOLD, HOLD, C, HOLD]
    piece = Piece("t", pieces[0].style, pieces[0].meter, tokens, pieces[0].step_in_bar[:12])
    every = Batcher(pieces, cfg).melody_at_chord(piece)
    new = Batcher(pieces, dataclasses.replace(cfg, own_band_reward_new_only=True)).melody_at_chord(piece)
    np.testing.assert_array_equal(every[:12], [0, 0, 0, 0, 2, 2, 4, 4, 4, 4, 0, 0])
    np.testing.assert_array_equal(new[:12], [0, 0, -1, -1, 2, 2, 4, 4, -1, -1, 0, 0])


def test_batches_made_by_loader_workers_give_the_same_run_as_in_process(tmp_path):
    """`liveband train --workers N` (a GPU run's crops made ahead in other processes) must
    change only the speed: the weights after a run, and after a resumed one, are the same."""
    corpus = random_corpus()
    cfg = dataclasses.replace(TINY, key_jump_prob=0.5, jump_lag_steps=4, corrupt_prob=0.5)
    train(cfg, corpus, tmp_path / "inline", progress=False)
    train(cfg, corpus, tmp_path / "workers", progress=False, workers=2, stop_at=3)
    train(cfg, corpus, tmp_path / "workers", resume=True, progress=False, workers=2)
    a = load_file(str(tmp_path / "inline" / "model.safetensors"))
    b = load_file(str(tmp_path / "workers" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
