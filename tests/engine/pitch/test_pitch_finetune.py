"""The fine-tuned PESTO weights (issue 18): shipped as safetensors, loaded by default,
better than the published weights on a sung note in noise; the training step learns;
a damaged or foreign weights file fails once with a clear error."""

import numpy as np
import pytest
import torch

from engine.pitch.pesto import PestoModel, PestoTracker
from engine.pitch.tracker import HOP, TRACKER_RATE
from engine.pitch.weights import (
    ENCODER_NAMES,
    WeightsError,
    default_pesto_weights,
    load_pesto_checkpoint,
    load_pesto_weights,
    pesto_sung_path,
    save_pesto_sung,
)
from liveband.bench import sung_corpus
from liveband.bench.pitch_finetune import (
    HELDOUT_SEEDS,
    FinetuneConfig,
    clip_hops,
    encoder_step,
    trained_tensors,
    training_clips,
)


def test_the_fine_tuned_weights_are_shipped_small_and_the_default():
    path = pesto_sung_path()
    assert path.is_file() and path.stat().st_size < 1_000_000
    assert default_pesto_weights() == "sung"
    sd, _, _, file = load_pesto_weights("sung")
    base = load_pesto_checkpoint()[0]
    assert file == path
    assert set(ENCODER_NAMES.values()) <= set(sd)
    # trained: the conv layers moved, the learnt shift (the readout) did not
    assert not np.allclose(sd["encoder.prefilt_layers.0.0.weight"], base["encoder.prefilt_layers.0.0.weight"])
    assert float(sd["shift"]) == float(base["shift"])
    assert PestoTracker(backend="torch").model.weights == "sung"


def test_onnx_cache_keys_name_the_weights(tmp_path, monkeypatch):
    """A cached export of the published weights must never serve the fine-tuned ones (or
    a re-trained file): the tag names the weights and the key hashes the file's bytes."""
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).normal(0, 0.1, (3, PestoModel(backend="torch", lookahead_ms=100).live))
    x = x.astype(np.float32)
    got = {}
    for w in ("sung", "mir-1k_g7"):
        got[w] = PestoModel(backend="onnx", lookahead_ms=100, weights=w)(x)[0]
        np.testing.assert_allclose(got[w], PestoModel(backend="torch", lookahead_ms=100, weights=w)(x)[0], atol=2e-3)
    names = sorted(p.name for p in (tmp_path / "cache" / "pitch").glob("*.onnx"))
    assert len(names) == 4 and sum("pesto-sung-" in n for n in names) == 2
    # a copy of the fine-tuned file with one weight changed gets its own export
    sd = {k: v for k, v in load_pesto_weights("sung")[0].items() if k in ENCODER_NAMES.values()}
    sd["encoder.fc.weight"] = sd["encoder.fc.weight"] * 1.5
    other = tmp_path / "other.safetensors"
    save_pesto_sung(other, sd, {})
    PestoModel(backend="onnx", lookahead_ms=100, weights=str(other))
    assert len(list((tmp_path / "cache" / "pitch").glob("*.onnx"))) == 6


def _hits(tracker: PestoTracker, clip) -> int:
    """Hops of a clip (16 kHz) whose pitch lies within 50 cents of the truth at the
    window's analysis centre (as the bench's raw pitch accuracy reads it)."""
    f0, _ = tracker.batch(clip.audio)
    t = ((np.arange(len(f0)) + 1) * HOP - tracker.delay_samples) / TRACKER_RATE
    ref = clip.f0_at(t)
    v = ref > 0
    return int(np.sum(np.abs(12 * np.log2(f0[v] / ref[v])) < 0.5))


def test_fine_tuned_tracker_names_more_hops_of_a_sung_line_at_5_db():
    # a seed no training set uses (fresh 20000+, validation 40000+, hum 30000+, dev, held-out)
    spec = sung_corpus.SungSpec(61001, "male", "breathy", "mix", 100.0, 8, "snr5", 50.0, sample_rate=16000)
    clip = sung_corpus.make_sung(spec)
    new = _hits(PestoTracker(backend="torch", weights="sung"), clip)
    old = _hits(PestoTracker(backend="torch", weights="mir-1k_g7"), clip)
    assert new > old * 1.05, (new, old)


def test_a_training_step_lowers_the_loss_on_a_small_batch():
    torch.manual_seed(0)
    cfg = FinetuneConfig(lr=1e-3)
    model = PestoModel(backend="torch", lookahead_ms=100, weights="mir-1k_g7")
    clip = sung_corpus.make_sung(sung_corpus.SungSpec(61002, n_notes=4, condition="snr10", sample_rate=16000))
    hops = clip_hops(model, clip, cfg, "snr10")
    i = np.flatnonzero(~np.isnan(hops.midi))[::4][:32]
    opt = torch.optim.Adam(model.torch_module.encoder.parameters(), lr=cfg.lr)
    losses = [encoder_step(model, opt, hops, i, cfg) for _ in range(6)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_training_clips_never_use_held_out_seeds():
    seeds = {getattr(s, "seed") for s, _ in training_clips(FinetuneConfig(), "train")}
    seeds |= {getattr(s, "seed") for s, _ in training_clips(FinetuneConfig(), "val")}
    held = {s.seed for s in sung_corpus.specs("heldout")}
    assert held <= set(HELDOUT_SEEDS) and not seeds & set(HELDOUT_SEEDS)
    assert not {s.seed for s in sung_corpus.specs("dev")} & seeds  # dev stays the tuning set


def test_second_round_options_shape_the_draw_and_are_checked():
    cfg = FinetuneConfig(seed=1, fresh_clips=400, init="sung", extra_conditions=("snr5",) * 3, tempos=(160, 180))
    specs = [s for s, c in training_clips(cfg, "train") if c != "hum"]
    seeds = {getattr(s, "seed") for s, _ in training_clips(cfg, "train") + training_clips(cfg, "val")}
    assert not seeds & set(HELDOUT_SEEDS) and not {s.seed for s in sung_corpus.specs("dev")} & seeds
    assert {getattr(s, "tempo") for s in specs} == {160.0, 180.0}
    assert 0.25 < np.mean([getattr(s, "condition") == "snr5" for s in specs]) < 0.55  # 4 of 10 draws
    for bad in ({"init": "pesto.pt"}, {"extra_conditions": ("snr3",)}, {"tempos": ()}, {"tempos": (500,)}):
        with pytest.raises(ValueError):
            FinetuneConfig(**bad)  # type: ignore[arg-type]


def test_a_second_round_keeps_the_started_from_voicing_head():
    """Started from the shipped fine-tune with the head left alone, the file must carry
    that head: left out, the loader would lay the published head under it."""
    model = PestoModel(backend="torch", lookahead_ms=100, weights="sung")
    shipped = load_pesto_weights("sung")[0]
    got = trained_tensors(model, FinetuneConfig(init="sung", train_voicing=False))
    heads = [k for k in shipped if k.startswith("confidence.")]
    assert heads and all(np.allclose(got[k], shipped[k]) for k in heads)
    assert not any(k.startswith("confidence.") for k in trained_tensors(model, FinetuneConfig(train_voicing=False)))


@pytest.mark.parametrize("damage", ["missing", "truncated", "shape", "foreign", "nan"])
def test_a_bad_fine_tuned_file_gives_one_clear_error(tmp_path, damage):
    good = {k: v for k, v in load_pesto_weights("sung")[0].items() if k in ENCODER_NAMES.values()}
    path = tmp_path / "w.safetensors"
    if damage == "truncated":
        save_pesto_sung(path, good, {})
        path.write_bytes(path.read_bytes()[:4000])
    elif damage == "shape":
        save_pesto_sung(path, {**good, "encoder.conv1.0.bias": np.zeros(7, np.float32)}, {})
    elif damage == "foreign":
        save_pesto_sung(path, {**good, "decoder.weight": np.zeros(3, np.float32)}, {})
    elif damage == "nan":
        save_pesto_sung(path, {**good, "encoder.conv1.0.bias": np.full(40, np.nan, np.float32)}, {})
    match = {
        "missing": "not found",
        "truncated": "cannot read",
        "shape": "has shape",
        "foreign": "not a PESTO weight",
        "nan": "not finite",
    }
    with pytest.raises(WeightsError, match=match[damage]):
        PestoTracker(backend="torch", weights=str(path))
