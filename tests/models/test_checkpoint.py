"""Checkpoints: safetensors with the config as metadata; every bad file gives one clear
line naming the file and the problem."""
import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import mido
import pytest
import torch
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
    assert issubclass(CheckpointError, ValueError)   # the CLI prints ValueErrors as one line


ROOT = Path(__file__).resolve().parents[2]


def _tiny_file(path, config, state=None):
    """A few-byte safetensors file whose metadata declares ``config``."""
    meta = {"format": "liveband-model", "version": "1", "config": config if isinstance(config, str) else config.to_json()}
    save_file(state or {"w": torch.zeros(4)}, str(path), metadata=meta)
    return path


def _melody(path):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for p in (60, 62, 64, 65, 67, 65, 64, 62):
        track += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=480)]
    mid.tracks.append(track)
    mid.save(str(path))
    return path


def _cli(tmp_path, *args, address_space_gb=None):
    """The real `liveband` CLI in a subprocess with its caches inside tmp_path. An address-space
    cap keeps a loader that would allocate gigabytes from taking the machine with it."""
    env = {**os.environ, "LIVEBAND_CACHE": str(tmp_path / "cache"), "LIVEBAND_HOME": str(tmp_path / "home"),
           "OMP_NUM_THREADS": "1"}
    env.pop("LIVEBAND_DEBUG", None)

    def cap():
        if address_space_gb:
            limit = int(address_space_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-m", "liveband.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=cap)


def test_a_huge_declared_config_is_refused_from_the_metadata_before_allocating(tmp_path):
    """A 0.5 kB file declaring d_model 4096 x 48 layers (~10 G parameters): the CLI says so in
    one line naming the file, inside a 4 GB address space (the old loader built the model first)."""
    huge = _tiny_file(tmp_path / "huge.safetensors",
                      dataclasses.replace(DEBUG_CONFIG, d_model=4096, n_layer=48, n_head=32))
    assert huge.stat().st_size < 2048
    out = _cli(tmp_path, "render", _melody(tmp_path / "m.mid"), "-o", tmp_path / "out.wav",
               "--checkpoint", huge, address_space_gb=4)
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


@pytest.mark.parametrize("change, words", [
    ({"n_layer": 65}, "n_layer=65"),
    ({"window": 100_000}, "window=100000"),
    ({"d_model": "192"}, "d_model='192'"),
    ({"n_head": 0}, "n_head=0"),
    ({"max_vocab": 10**9}, "max_vocab"),
    ({"vocab_sizes": [10**9] * 5}, "vocab_sizes"),
    ({"pattern": {"kind": "parallel", "lookahead": 1, "delays": [0] * 5, "order": [0, 1, 2, 3, 4],
                  "num_streams": 10**9}}, "num_streams"),
    ({"pattern": {"kind": "delay", "lookahead": 1, "delays": [0, 0, 10**9, 1, 1], "order": [0, 1, 2, 3, 4],
                  "num_streams": 5}}, "delays"),
    ({"pattern": "x"}, "bad model config"),
])
def test_declared_configs_outside_the_limits_are_refused_by_name(tmp_path, monkeypatch, change, words):
    _never_build(monkeypatch)
    cfg = {**json.loads(DEBUG_CONFIG.to_json()), **change}
    path = _tiny_file(tmp_path / "bad.safetensors", json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load_model_file(path)
    assert words in _one_line(e.value, path)


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
    for broken, words in ((dict(state, extra=torch.zeros(3)), "unexpected ['extra']"),
                          ({k: v for k, v in state.items() if k != name}, "missing ['blocks.0.attn.qkv.weight']"),
                          (dict(state, **{name: torch.zeros(5, 5)}), "wrong shape"),
                          (dict(state, **{name: state[name].to(torch.int32)}), "I32")):
        path = _tiny_file(tmp_path / "t.safetensors", DEBUG_CONFIG, broken)
        with pytest.raises(CheckpointError) as e:
            load_model_file(path)
        assert words in _one_line(e.value, path)
