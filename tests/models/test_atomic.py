"""models.atomic: the one writer of whole-or-nothing output files."""

from __future__ import annotations

import os

import pytest

from models.atomic import atomic_path, temp_beside, write_atomic


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "a.json"
    out.write_text("old")
    assert write_atomic(out, "new ü") == out
    assert out.read_text(encoding="utf-8") == "new ü"
    write_atomic(out, b"\x00\x01", fsync=False)
    assert out.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, exc):
    out = tmp_path / "a.mid"
    out.write_text("old")
    with pytest.raises(exc):
        with atomic_path(out, suffix=".part") as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".a.mid.") and tmp.name.endswith(".part")
            tmp.write_text("half")
            raise exc()
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid"]


def test_the_temporary_is_made_at_once_with_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    t1, t2 = temp_beside(tmp_path / "x.wav"), temp_beside(tmp_path / "x.wav")
    assert t1 != t2 and t1.exists() and t1.stat().st_size == 0
    assert t1.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "missing" / "x.wav"):
            raise AssertionError("the block must not run when the folder is missing")


def test_a_long_name_still_fits(tmp_path):
    out = tmp_path / ("n" * 240 + ".mid")
    write_atomic(out, b"x")
    assert out.read_bytes() == b"x"


@pytest.mark.parametrize("name", ["\U0001f3b8" * 60 + ".wav", "é" * 125 + ".mid", "n" + "\U0001f3b8" * 62 + ".wav"])
def test_a_long_name_of_wide_characters_still_fits_and_its_temporary_keeps_whole_characters(tmp_path, name):
    out = tmp_path / name
    assert len(os.fsencode(name)) <= 255  # a valid name: the limit counts bytes
    tmp = temp_beside(out)
    assert len(os.fsencode(tmp.name)) <= 255 and tmp.name.startswith("." + name[:10])
    tmp.name.encode("utf-8")  # whole characters: no half of one left as a lone surrogate
    tmp.unlink()
    write_atomic(out, b"x")
    assert out.read_bytes() == b"x" and os.listdir(tmp_path) == [name]
