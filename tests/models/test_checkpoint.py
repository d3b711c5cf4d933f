"""Checkpoints: safetensors with the config as metadata; every bad file gives one clear
line naming the file and the problem."""
import dataclasses
import json

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
