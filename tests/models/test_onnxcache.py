"""The one cache of derived files: atomic writes with a checksum sidecar; a damaged or
unopenable cached file is exported again; a failed export leaves nothing behind."""

import os
import time

import pytest

from models import onnxcache


def _export(content: bytes, calls: list):
    def export(tmp):
        calls.append(tmp)
        tmp.write_bytes(content)

    return export


def test_one_variable_places_every_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    assert onnxcache.cache_dir("onnx") == tmp_path / "onnx" and onnxcache.cache_dir("pitch") == tmp_path / "pitch"


def test_a_cached_file_is_reused_and_a_damaged_one_exported_again(tmp_path):
    path, calls = tmp_path / "c" / "x.onnx", []
    assert onnxcache.open_cached(path, _export(b"good", calls), lambda p: p.read_bytes()) == b"good"
    assert onnxcache.open_cached(path, _export(b"good", calls), lambda p: p.read_bytes()) == b"good"
    assert len(calls) == 1 and onnxcache.verified(path)
    path.write_bytes(b"goxd")  # bit rot the opener would not notice
    assert onnxcache.open_cached(path, _export(b"good", calls), lambda p: p.read_bytes()) == b"good"
    assert len(calls) == 2 and sorted(os.listdir(path.parent)) == ["x.onnx", "x.onnx.sha256"]


def test_a_verified_file_the_opener_refuses_is_exported_again(tmp_path):
    path, calls, opened = tmp_path / "x.onnx", [], []
    onnxcache.write_cached(path, _export(b"v1", calls))

    def open_(p):
        opened.append(p.read_bytes())
        if len(opened) == 1:
            raise Exception("INVALID_PROTOBUF : Protobuf parsing failed.\nmore")
        return "session"

    assert onnxcache.open_cached(path, _export(b"v2", calls), open_) == "session"
    assert opened == [b"v1", b"v2"]


def test_a_fresh_export_that_cannot_be_opened_is_a_one_line_runtime_error(tmp_path):
    def refuse(p):
        raise Exception("Load model failed\ndetails")

    with pytest.raises(RuntimeError) as e:
        onnxcache.open_cached(tmp_path / "x.onnx", _export(b"v", []), refuse)
    assert str(e.value) == f"{tmp_path / 'x.onnx'}: a fresh export cannot be opened (Load model failed)"


@pytest.mark.parametrize("exc", [RuntimeError("parity"), KeyboardInterrupt()])
def test_a_failed_export_leaves_no_file(tmp_path, exc):
    def export(tmp):
        tmp.write_bytes(b"half")
        raise exc

    with pytest.raises(type(exc)):
        onnxcache.write_cached(tmp_path / "x.onnx", export)
    assert os.listdir(tmp_path) == []


def test_temporary_files_a_killed_export_left_are_swept(tmp_path):
    old, new = tmp_path / "a.onnx.1.tmp", tmp_path / "b.onnx.2.tmp"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    t = time.time() - 2 * onnxcache.STALE_TMP_S
    os.utime(old, (t, t))
    onnxcache.write_cached(tmp_path / "x.onnx", _export(b"v", []))
    assert not old.exists() and new.exists()  # a recent one may be another process's export
