"""Checkpoints: safetensors with the config as metadata; every bad file gives one clear
line naming the file and the problem."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import melody_midi, run_cli
from safetensors.torch import load_file, save_file

from models.checkpoint import CheckpointError, load_model_file, read_metadata, save_model
from models.runtime import DEBUG_CONFIG, debug_model, load_model
from models.transformer import Transformer

torch.set_num_threads(1)


def test_round_trip_keeps_weights_and_config(tmp_path):
    lm = debug_model(3)
    path = save_model(lm.model, tmp_path / "m.safetensors")
    back = load_model(path)
    assert back.config == lm.config
    for k, v in lm.model.state_dict().items():
        torch.testing.assert_close(back.model.state_dict()[k], v)
    meta = read_metadata(path)
    assert meta["version"] == "1" and json.loads(meta["config"])["d_model"] == DEBUG_CONFIG.d_model


def test_fp16_storage_loads_as_float32(tmp_path):
    lm = debug_model(1)
    path = save_model(lm.model, tmp_path / "h.safetensors", dtype=torch.float16)
    assert next(iter(load_file(str(path)).values())).dtype == torch.float16
    back = load_model(path)
    assert next(back.model.parameters()).dtype == torch.float32


def _one_line(exc: Exception, path) -> str:
    msg = str(exc)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_other_version_is_refused(tmp_path):
    lm = debug_model(0)
    path = tmp_path / "old.safetensors"
    state = {k: v.contiguous() for k, v in lm.model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "liveband-model", "version": "0", "config": lm.config.to_json()})
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert "version" in _one_line(e.value, path)


def test_wrong_shapes_are_refused(tmp_path):
    big = Transformer(dataclasses.replace(DEBUG_CONFIG, d_model=48))
    path = tmp_path / "shapes.safetensors"
    state = {k: v.contiguous() for k, v in big.state_dict().items()}
    save_file(state, str(path), metadata={"format": "liveband-model", "version": "1", "config": DEBUG_CONFIG.to_json()})
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert "shape" in _one_line(e.value, path)


def test_corrupt_and_foreign_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00garbage, not a checkpoint" * 10)
    with pytest.raises(CheckpointError) as e:
        load_model_file(bad)
    _one_line(e.value, bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError) as e:
        load_model_file(foreign)
    assert "not a LiveBand" in _one_line(e.value, foreign)
    with pytest.raises(CheckpointError) as e:
        load_model_file(tmp_path / "nope.safetensors")
    _one_line(e.value, tmp_path / "nope.safetensors")
    assert issubclass(CheckpointError, ValueError)  # the CLI prints ValueErrors as one line


def _tiny_file(path, config, state=None):
    """A few-byte safetensors file whose metadata declares ``config``."""
    meta = {
        "format": "liveband-model",
        "version": "1",
        "config": config if isinstance(config, str) else config.to_json(),
    }
    save_file(state or {"w": torch.zeros(4)}, str(path), metadata=meta)
    return path


def test_a_huge_declared_config_is_refused_from_the_metadata_before_allocating(tmp_path):
    """A 0.5 kB file declaring d_model 4096 x 48 layers (~10 G parameters): the CLI says so in
    one line naming the file, inside a 4 GB address space (the old loader built the model first)."""
    huge = _tiny_file(
        tmp_path / "huge.safetensors", dataclasses.replace(DEBUG_CONFIG, d_model=4096, n_layer=48, n_head=32)
    )
    assert huge.stat().st_size < 2048
    out = run_cli(
        tmp_path,
        "render",
        melody_midi(tmp_path / "m.mid"),
        "-o",
        tmp_path / "out.wav",
        "--checkpoint",
        huge,
        address_space_gb=4,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip()
    assert "\n" not in err and str(huge) in err and "d_model=4096" in err, err
    assert "Traceback" not in out.stderr and not (tmp_path / "out.wav").exists()


def _never_build(monkeypatch):
    """Make building a real (allocated) model fail loudly: these configs must be refused first."""
    import models.checkpoint as ck

    real = ck.Transformer

    def guarded(cfg):
        if torch.get_default_device().type != "meta":
            raise AssertionError("a model was built from a config outside the limits")
        return real(cfg)

    monkeypatch.setattr(ck, "Transformer", guarded)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"n_layer": 65}, "n_layer=65"),
        ({"window": 100_000}, "window=100000"),
        ({"d_model": "192"}, "d_model='192'"),
        ({"n_head": 0}, "n_head=0"),
        ({"max_vocab": 10**9}, "max_vocab"),
        ({"vocab_sizes": [10**9] * 5}, "vocab_sizes"),
        (
            {
                "pattern": {
                    "kind": "parallel",
                    "lookahead": 1,
                    "delays": [0] * 5,
                    "order": [0, 1, 2, 3, 4],
                    "num_streams": 10**9,
                }
            },
            "num_streams",
        ),
        (
            {
                "pattern": {
                    "kind": "delay",
                    "lookahead": 1,
                    "delays": [0, 0, 10**9, 1, 1],
                    "order": [0, 1, 2, 3, 4],
                    "num_streams": 5,
                }
            },
            "delays",
        ),
        ({"pattern": "x"}, "bad model config"),
        ({"d_model": "9" * 100_000}, "d_model='99999"),
    ],
)
def test_declared_configs_outside_the_limits_are_refused_by_name(tmp_path, monkeypatch, change, words):
    _never_build(monkeypatch)
    cfg = {**json.loads(DEBUG_CONFIG.to_json()), **change}
    path = _tiny_file(tmp_path / "bad.safetensors", json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert words in _one_line(e.value, path) and len(str(e.value)) < 200 + len(str(path))


def test_a_config_nested_thousands_deep_is_refused_in_one_line(tmp_path):
    path = _tiny_file(tmp_path / "deep.safetensors", "[" * 5000 + "]" * 5000)
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert "bad model config" in _one_line(e.value, path)


def test_a_config_within_each_limit_but_too_many_parameters_is_refused_without_allocating(tmp_path, monkeypatch):
    _never_build(monkeypatch)
    cfg = dataclasses.replace(DEBUG_CONFIG, d_model=2048, n_layer=64, n_head=16)
    path = _tiny_file(tmp_path / "wide.safetensors", cfg)
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert "parameters" in _one_line(e.value, path) and "200,000,000" in str(e.value)


def test_tensors_are_checked_against_the_config_from_the_header(tmp_path, monkeypatch):
    """Names, shapes and dtypes are compared with the config's model (built on the meta
    device) before any tensor data is read."""
    import models.checkpoint as ck

    state = {k: v.contiguous() for k, v in debug_model(0).model.state_dict().items()}
    name = "blocks.0.attn.qkv.weight"

    def read_data(*a, **k):
        raise AssertionError("tensor data read before the header was checked")

    monkeypatch.setattr(ck, "load_file", read_data)
    for broken, words in (
        (dict(state, extra=torch.zeros(3)), "unexpected ['extra']"),
        ({k: v for k, v in state.items() if k != name}, "missing ['blocks.0.attn.qkv.weight']"),
        (dict(state, **{name: torch.zeros(5, 5)}), "wrong shape"),
        (dict(state, **{name: state[name].to(torch.int32)}), "I32"),
    ):
        path = _tiny_file(tmp_path / "t.safetensors", DEBUG_CONFIG, broken)
        with pytest.raises(CheckpointError) as e:
            load_model_file(path)
        assert words in _one_line(e.value, path)


def _damaged(tmp_path, value, name="blocks.0.attn.qkv.weight"):
    """The debug model with one value of ``name`` set to ``value``, saved as a checkpoint."""
    lm = debug_model(0)
    state = {k: v.contiguous().clone() for k, v in lm.model.state_dict().items()}
    state[name][1, 2] = value
    return _tiny_file(tmp_path / "damaged.safetensors", lm.config, state)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, value):
    path = _damaged(tmp_path, value)
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    msg = _one_line(e.value, path)
    assert "non-finite" in msg and "blocks.0.attn.qkv.weight (1 of" in msg


@pytest.mark.parametrize("command", ["render", "eval", "bench"])
def test_the_cli_refuses_nan_weights_in_one_line_and_leaves_no_temporary_export(tmp_path, command):
    """The issue's case: eval printed all-null metrics with rc 0; render and bench failed
    with a message naming nothing, and each try left a .onnx.tmp in the cache."""
    path = _damaged(tmp_path, float("nan"))
    jsb = tmp_path / "jsb.json"  # one chorale in the JSB-16th format
    jsb.write_text(json.dumps({"valid": [[[67, 64, 60, 48]] * 4 + [[69, 60, 57, 45]] * 4]}))
    args = {
        "render": ["render", melody_midi(tmp_path / "m.mid"), "-o", tmp_path / "out.wav", "--checkpoint", path],
        "eval": ["eval", "--checkpoint", path, "--jsb", jsb],
        "bench": ["bench", "model", "--quick", "--checkpoint", path],
    }[command]
    out = run_cli(tmp_path, *args)
    assert out.returncode == 2, (out.stdout[-1000:], out.stderr[-2000:])
    assert out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert str(path) in line and "blocks.0.attn.qkv.weight" in line and "non-finite" in line
    left = [p.name for p in (tmp_path / "cache").rglob("*")] if (tmp_path / "cache").exists() else []
    assert not [n for n in left if n.endswith(".tmp") or ".tmp" in n], left


class _Payload:
    """Unpickling this would create the folder ``marker``: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def _pickles(tmp_path, marker) -> list:
    """Malicious pickles named as checkpoints: a raw pickle and torch.save's zip format."""
    import pickle

    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=2))
    zipped = tmp_path / "zipped.safetensors"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload(marker)}, str(zipped))
    pth = tmp_path / "zipped.pth"
    pth.write_bytes(zipped.read_bytes())
    return [raw, zipped, pth]


def test_a_pickle_disguised_as_a_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    for path in _pickles(tmp_path, marker):
        with pytest.raises(CheckpointError) as e:
            load_model_file(path)
        _one_line(e.value, path)
        assert not marker.exists()
    out = run_cli(
        tmp_path,
        "render",
        melody_midi(tmp_path / "m.mid"),
        "-o",
        tmp_path / "o.wav",
        "--checkpoint",
        tmp_path / "zipped.pth",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and str(tmp_path / "zipped.pth") in out.stderr
    assert not marker.exists()


def test_a_pickle_in_place_of_the_pitch_weights_is_refused_without_running(tmp_path):
    """The one place torch.load is used (the trackers' shipped .pth/.ckpt) loads weights only."""
    from engine.pitch.weights import WeightsError, load_crepe_state, load_pesto_checkpoint

    marker = tmp_path / "ran"
    for path in _pickles(tmp_path, marker):
        for load in (lambda p: load_crepe_state("tiny", path=p), lambda p: load_pesto_checkpoint(path=p)):
            with pytest.raises(WeightsError):
                load(path)
            assert not marker.exists()


def test_every_torch_load_in_the_project_loads_weights_only_and_nothing_unpickles():
    """A source scan, so a new loader cannot quietly unpickle: torch.load needs
    weights_only=True; the pickle module's readers and unpickler class, numpy loads that allow
    pickles, dill, joblib and TorchScript loading are not used to read files. (The names it
    looks for are put together below, so that this file does not spell them itself.)"""
    import ast

    pk = "pickle"
    readers = {f"{mod}.{fn}" for mod in (pk, "_" + pk) for fn in ("load", "loads")} | {"torch.jit.load"}

    root = Path(__file__).resolve().parents[2]
    found, bad = 0, []
    for folder in ("liveband", "engine", "models", "ui", "scripts"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                    if any(n and n.split(".")[0] in ("dill", "joblib", "cloudpickle") for n in names):
                        bad.append(f"{path.relative_to(root)}:{node.lineno} imports {names}")
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                kw = {k.arg: k.value for k in node.keywords}
                where = f"{path.relative_to(root)}:{node.lineno} {name}"
                if name == "torch.load":
                    found += 1
                    w = kw.get("weights_only")
                    if not (isinstance(w, ast.Constant) and w.value is True):
                        bad.append(f"{where} without weights_only=True")
                elif name.split(".")[-1] == "Unpick" + "ler" or name in readers:
                    bad.append(where)
                elif name in ("np.load", "numpy.load"):
                    a = kw.get("allow_" + pk)
                    if not (isinstance(a, ast.Constant) and a.value is False):
                        bad.append(f"{where} without allow_{pk}=False")
    assert not bad, bad
    assert found >= 2  # the scan sees the pitch loaders' calls
