"""CREPE and PESTO, re-implemented here on their shipped weights, find the pitch of
synthetic voice-like tones; the ONNX live path equals the torch network; streaming one
hop at a time equals the batch computation."""

import numpy as np
import pytest

from engine.pitch.tracker import HOP, TRACKER_RATE, make_tracker


def tone(f0: float, seconds: float = 0.6, harmonics: int = 6) -> np.ndarray:
    t = np.arange(int(seconds * TRACKER_RATE)) / TRACKER_RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h**1.5 for h in range(1, harmonics + 1))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def cents(a, b):
    return 1200 * np.log2(np.asarray(a) / b)


@pytest.fixture(scope="module")
def crepe():
    return make_tracker("crepe")


@pytest.fixture(scope="module")
def pesto():
    return make_tracker("pesto")


@pytest.mark.parametrize("f0", [98.0, 155.6, 246.9, 392.0, 622.3])
def test_crepe_tiny_is_within_25_cents_on_harmonic_tones(crepe, f0):
    est, conf = crepe.batch(tone(f0))
    steady = slice(10, None)  # after the 64 ms window has filled
    assert np.median(np.abs(cents(est[steady], f0))) < 25
    assert np.median(conf[steady]) > 0.5


@pytest.mark.parametrize("f0", [98.0, 155.6, 246.9, 392.0, 622.3])
def test_pesto_is_within_35_cents_on_harmonic_tones(pesto, f0):
    # PESTO's output bins are 1/3 semitone; the published reduction rarely lands between
    est, conf = pesto.batch(tone(f0))
    assert np.median(np.abs(cents(est[20:], f0))) < 35


def test_crepe_onnx_equals_torch():
    from engine.pitch.crepe import CrepeTracker

    x = tone(220.0, 0.3) + np.random.default_rng(0).normal(0, 0.01, int(0.3 * TRACKER_RATE)).astype(np.float32)
    a = CrepeTracker(backend="onnx").activations(x)
    b = CrepeTracker(backend="torch").activations(x)
    assert np.abs(a - b).max() < 1e-4


def test_pesto_onnx_equals_torch():
    from engine.pitch.pesto import PestoTracker

    x = tone(330.0, 0.3)
    fa, ca = PestoTracker(backend="onnx").batch(x)
    fb, cb = PestoTracker(backend="torch").batch(x)
    assert np.abs(cents(fa, fb)).max() < 1.0 and np.abs(ca - cb).max() < 1e-3


def test_pesto_fast_layers_compute_the_published_layers():
    """The live path's rewrites (CQT only where kernels are non-zero, residual convs by
    FFT, the Toeplitz conv as a matrix) give the sums of the layers as published."""
    import torch

    from engine.pitch.pesto import FftConvs, PestoModel, cqt_kernels, support_groups, toeplitz_matrix

    rng = np.random.default_rng(1)
    m = PestoModel(backend="torch", lookahead_ms=100.0)
    h = m.hcqt
    kern, lengths, _ = cqt_kernels(TRACKER_RATE, float(h["fmin"]), int(h["n_bins"]), m.bps, float(h["gamma"]))
    kern = kern[:, : m.live]
    groups = support_groups(kern)
    assert [g[0] for g in groups] == [0] + [g[1] for g in groups[:-1]] and groups[-1][1] == m.n_bins
    x = rng.normal(0, 0.1, m.live).astype(np.float32)
    dense = np.abs(kern @ x)
    sparse = np.concatenate([np.abs(kern[b0:b1, c0:c1] @ x[c0:c1]) for b0, b1, c0, c1 in groups])
    assert np.abs(sparse - dense).max() <= 1e-5 * dense.max()

    enc = m.torch_module.encoder
    feats = torch.from_numpy(rng.normal(0, 1, (3, 40, 219)).astype(np.float32))
    with torch.no_grad():
        ref = feats
        for conv in enc.pre:
            ref = torch.nn.functional.leaky_relu(conv(ref), 0.3) + ref
        ref = ref.numpy()
        flat = torch.from_numpy(rng.normal(0, 1, (2, 657)).astype(np.float32))
        fc_ref = enc.fc(flat[:, None, :])[:, 0, :].numpy()
    fast = FftConvs(enc.pre, 0.3)(feats.numpy())
    assert fast.shape == ref.shape and np.abs(fast - ref).max() <= 1e-4 * np.abs(ref).max()
    fc = flat.numpy() @ toeplitz_matrix(enc.fc.weight.detach().numpy().reshape(-1), 657, 384)
    assert np.abs(fc - fc_ref).max() <= 1e-4 * np.abs(fc_ref).max()


@pytest.mark.parametrize("name", ["crepe", "pesto"])
def test_streaming_hops_equal_batch(name, crepe, pesto):
    trk = crepe if name == "crepe" else pesto
    x = tone(180.0, 0.4)
    f_batch, c_batch = trk.batch(x)
    trk.reset()
    stream = np.array([trk.process(x[i * HOP : (i + 1) * HOP]) for i in range(len(x) // HOP)])
    assert np.abs(cents(stream[:, 0], f_batch)).max() < 1.0
    assert np.abs(stream[:, 1] - c_batch).max() < 1e-3


def test_silence_has_low_confidence(crepe):
    _, conf = crepe.batch(np.zeros(TRACKER_RATE // 2, np.float32))
    assert conf.max() < 0.2


def test_unknown_tracker_is_refused():
    with pytest.raises(ValueError, match="unknown pitch tracker"):
        make_tracker("yin")


def test_crepe_full_runs_from_torchcrepes_weights_through_onnx():
    """Full CREPE (for GPUs) is the same network at 8x the width: its ONNX export equals
    the torch network and finds the pitch. On this CPU it is not real-time (~25 ms a hop)."""
    from engine.pitch.crepe import CrepeTracker

    x = tone(246.9, 0.25)
    onnx = CrepeTracker(capacity="full", backend="onnx")
    a = onnx.activations(x)
    b = CrepeTracker(capacity="full", backend="torch").activations(x)
    assert np.abs(a - b).max() < 1e-3
    est, conf = onnx.batch(x)
    assert np.median(np.abs(cents(est[10:], 246.9))) < 25 and np.median(conf[10:]) > 0.5


def test_crepe_auto_is_full_on_a_gpu_and_tiny_without():
    import torch

    from engine.pitch.crepe import CrepeTracker

    t = CrepeTracker(capacity="auto", device="auto")
    gpu = torch.cuda.is_available()
    assert t.capacity == ("full" if gpu else "tiny")
    if gpu:  # not checked on this CPU-only box
        assert t.providers[0] == "CUDAExecutionProvider"
