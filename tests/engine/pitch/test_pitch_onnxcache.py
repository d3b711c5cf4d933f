"""The pitch trackers' ONNX exports live in the one cache ($LIVEBAND_CACHE/pitch) and a
damaged cached export is made again."""

import numpy as np
import torch

from engine.pitch.onnxcache import cache_dir, open_session


def _build():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 3).eval(), (torch.zeros(1, 4),)


def _run(sess):
    return sess.run(None, {"x": np.ones((2, 4), np.float32)})[0]


def test_exports_go_to_the_one_cache_and_a_damaged_one_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LIVEBAND_HOME", str(tmp_path / "home"))
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    want = _run(open_session("lin", weights, _build, ["x"], ["y"]))
    assert cache_dir() == tmp_path / "cache" / "pitch"
    (path,) = cache_dir().glob("*.onnx")
    assert not (tmp_path / "home").exists()
    path.write_bytes(path.read_bytes()[:200])
    np.testing.assert_array_equal(_run(open_session("lin", weights, _build, ["x"], ["y"])), want)
    assert sorted(p.name for p in cache_dir().iterdir()) == [path.name, path.name + ".sha256"]
