"""The runtime API the engine and evaluation use: debug model, accompanist contract,
token NLL, backend fallback, and the shipped checkpoint."""

import warnings

import numpy as np
import pytest
import torch
from cli_helpers import melody_midi, run_cli
from tiny_pieces import random_piece

from models.runtime import DEFAULT_CHECKPOINT, debug_model, load_accompanist, load_model
from models.sampling import make_sampler
from models.tokens import ACCOMP_STREAMS, CHORD, CHORD_UNKNOWN, MELODY, NUM_STREAMS, VOCAB_SIZES

torch.set_num_threads(1)


def test_debug_model_is_deterministic_and_small():
    a, b, c = debug_model(0), debug_model(0), debug_model(1)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    assert any(not torch.equal(v, c.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert a.model.num_params() < 200_000


def test_accompanist_contract():
    acc = debug_model(0).accompanist()
    acc.reset("folk", "3/4")
    seen_streams = set()

    def sampler(stream, logits):
        seen_streams.add(stream)
        assert logits.dtype == np.float32 and logits.shape == (VOCAB_SIZES[stream],)
        return make_sampler(1.0, stream)(stream, logits)

    for t in range(40):
        out = acc.advance(3 + 60 if t % 4 == 0 else 2, t % 12, sampler)
        assert out.shape == (len(ACCOMP_STREAMS),) and out.dtype == np.int64
        for s, tok in zip(ACCOMP_STREAMS, out):
            assert 0 < tok < VOCAB_SIZES[s]
    assert seen_streams == set(ACCOMP_STREAMS)
    assert acc.lookahead == 1


def test_same_seeded_sampler_gives_same_band_and_reset_restarts():
    acc = debug_model(0).accompanist()

    def run():
        acc.reset("pop", "4/4")
        s = make_sampler(1.0, seed=7)
        return np.array([acc.advance(65, t % 16, s) for t in range(30)])

    np.testing.assert_array_equal(run(), run())


def test_token_nll_shape_nan_and_values():
    lm = debug_model(0)
    piece = random_piece(40, seed=4, style="chorale")
    tok = piece.tokens.copy()
    tok[:, CHORD] = CHORD_UNKNOWN  # JSB-like: no chord labels
    piece = type(piece)(piece.name, piece.style, piece.meter, tok, piece.step_in_bar)
    nll = lm.token_nll(piece)
    assert nll.shape == (40, NUM_STREAMS) and nll.dtype == np.float64
    assert np.isnan(nll[:, CHORD]).all()
    finite = nll[:, [MELODY, 2, 3, 4]]
    assert np.isfinite(finite).all() and (finite > 0).all()
    # an untrained model is near uniform over its vocabulary
    assert abs(np.mean(finite) - np.log(VOCAB_SIZES[MELODY] - 1)) < 1.0


def test_unavailable_backend_falls_back_with_one_warning(tmp_path):
    from models.checkpoint import save_model

    path = save_model(debug_model(0).model, tmp_path / "d.safetensors")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the fallback is for machines without")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acc = load_accompanist(path, backend="torch-cuda")
    (w,) = [w for w in caught if "not available here" in str(w.message)]
    assert (
        str(w.message) == "backend torch-cuda is not available here (no CUDA GPU is visible to torch); using torch-cpu"
    )
    acc.reset("pop", "4/4")
    assert acc.advance(60, 0, make_sampler(0.0)).shape == (4,)


def test_onnx_backend_streams_like_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    lm = debug_model(2)
    a, b = lm.accompanist(backend="torch-cpu"), lm.accompanist(backend="onnx-cpu")
    outs = []
    for acc in (a, b):
        acc.reset("pop", "4/4")
        s = make_sampler(0.0)
        outs.append(np.array([acc.advance(60 + t % 5, t % 16, s) for t in range(3 * lm.config.window)]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert list((tmp_path / "onnx").glob("*.onnx"))  # exported outside the repository


def _stream(acc, window):
    acc.reset("pop", "4/4")
    s = make_sampler(0.0)
    return np.array([acc.advance(60 + t % 5, t % 16, s) for t in range(3 * window)])


@pytest.mark.parametrize("damage", ["truncated", "garbage with a matching sidecar", "one flipped byte"])
def test_a_damaged_cached_onnx_is_exported_again(tmp_path, monkeypatch, damage):
    import hashlib

    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    lm = debug_model(2)
    want = _stream(lm.accompanist(backend="torch-cpu"), lm.config.window)
    lm.accompanist(backend="onnx-cpu")
    (path,) = (tmp_path / "onnx").glob("*.onnx")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:1000])
    elif damage == "one flipped byte":  # a weight's exponent bit: the graph still opens
        import onnxruntime as ort

        i = data.index(lm.model.tok_emb.weight.detach().numpy().tobytes()[:64]) + 3
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :])
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    else:
        path.write_bytes(b"\x00not an onnx graph" * 50)
        (tmp_path / "onnx" / (path.name + ".sha256")).write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    np.testing.assert_array_equal(_stream(lm.accompanist(backend="onnx-cpu"), lm.config.window), want)
    assert path.read_bytes() == data


def test_a_model_with_nan_weights_is_not_exported_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    lm = debug_model(2)
    with torch.no_grad():
        lm.model.blocks[1].mlp[0].weight[3, 4] = float("nan")
    with pytest.raises(RuntimeError) as e:
        lm.accompanist(backend="onnx-cpu")
    assert "non-finite weights in tensor blocks.1.mlp.0.weight (1 of" in str(e.value)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_render_with_a_corrupt_cached_model_onnx_still_renders(tmp_path):
    """The issue's case through the real CLI: the default (onnx-cpu) render after the
    cached export was damaged re-exports it, says so in one line, and writes the WAV."""
    from models.checkpoint import save_model

    ckpt = save_model(debug_model(0).model, tmp_path / "d.safetensors")
    mid = melody_midi(tmp_path / "m.mid")
    first = run_cli(tmp_path, "render", mid, "-o", tmp_path / "a.wav", "--checkpoint", ckpt)
    assert first.returncode == 0, first.stderr[-2000:]
    (path,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    path.write_bytes(path.read_bytes()[:1000])
    again = run_cli(tmp_path, "render", mid, "-o", tmp_path / "b.wav", "--checkpoint", ckpt)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stderr and "onnx-cpu" in again.stdout
    assert [ln for ln in again.stderr.splitlines() if str(path) in ln] == [
        f"cached {path} does not match its checksum; exporting it again"
    ]
    assert (tmp_path / "b.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()


def test_shipped_checkpoint_loads_and_plays():
    """The default checkpoint is real weights (not the debug model) and plays."""
    assert DEFAULT_CHECKPOINT.is_file(), "models/checkpoints/default.safetensors is missing"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 25 * 2**20
    lm = load_model()
    assert lm.model.num_params() > 500_000
    acc = lm.accompanist()
    acc.reset("pop", "4/4")
    s = make_sampler(0.8, seed=0)
    out = np.array([acc.advance(3 + 64 if t % 4 == 0 else 2, t % 16, s) for t in range(64)])
    assert (out[:, 1:] >= 3).any()  # it plays notes


def test_the_shipped_bands_chord_already_hears_the_melody_note_of_the_16th_before():
    """The chord the shipped model draws for step t hears the melody up to t - 1, the
    least a live band can wait (step t is drawn before it sounds). A chord that heard the
    melody only up to t - 2 came in under the melody's next note after a key jump, and
    the band took 4 beats to follow a tritone (docs/data-and-eval.md, stage 30)."""
    from models.sampling import greedy
    from models.tokens import CHORD, HOLD, NOTE_BASE

    lm = load_model()
    t_chord = 16

    def chord_logits(last_note: int) -> np.ndarray:
        acc = lm.accompanist()
        acc.reset("pop", "4/4")
        seen: dict[int, np.ndarray] = {}

        def record(stream: int, logits: np.ndarray) -> int:
            if stream == CHORD and acc.current_cell is not None:
                seen[acc.current_cell[0]] = np.array(logits, np.float64)
            return greedy(stream, logits)

        # melody steps 0..14 a C major line, step 15 the note under test; the call that
        # returns frame t is fed melody step t - 1
        melody = [NOTE_BASE + 60 + (0, 4, 7, 4)[k // 4 % 4] if k % 4 == 0 else HOLD for k in range(15)]
        melody.append(NOTE_BASE + last_note)
        for t in range(t_chord + 1):
            acc.advance(melody[t - 1] if t > 0 else HOLD, t % 16, record)
        return seen[t_chord]

    c, f_sharp = chord_logits(72), chord_logits(66)
    real = np.isfinite(c) & np.isfinite(f_sharp)  # masked tokens are -inf in both
    assert real.sum() > 10
    assert float(np.abs(c[real] - f_sharp[real]).max()) > 0.5


@pytest.mark.parametrize("backend", ["torch-cpu", "onnx-cpu"])
def test_a_plan_rolls_out_from_a_copy_and_leaves_the_stream_as_it_was(tmp_path, monkeypatch, backend):
    """Accompanist.plan (the piano roll's tentative beat): between any two steps a greedy
    rollout of a beat changes nothing of the stream that follows (cells and fixed-size
    cache restored, past the window's wrap too), and it is the very frames the stream
    would give for the same melody."""
    from models.sampling import greedy
    from models.tokens import HOLD

    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    lm = debug_model(2)
    want = _stream(lm.accompanist(backend=backend), lm.config.window)
    acc = lm.accompanist(backend=backend)
    acc.reset("pop", "4/4")
    s = make_sampler(0.0)
    got, plans = [], []
    for t in range(3 * lm.config.window):
        got.append(acc.advance(60 + t % 5, t % 16, s))
        plans.append((t + 1, acc.plan([HOLD] * 4, (t + 1) % 16, greedy)))
    np.testing.assert_array_equal(np.array(got), want)
    # a plan is what the stream itself would play if the melody were held
    t0, plan = plans[20]
    twin = lm.accompanist(backend=backend)
    twin.reset("pop", "4/4")
    for t in range(t0):
        twin.advance(60 + t % 5, t % 16, s)
    np.testing.assert_array_equal(plan, np.array([twin.advance(HOLD, (t0 + i) % 16, greedy) for i in range(4)]))
