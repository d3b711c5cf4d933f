"""engine.small_file: a small user file is read whole, or refused with a short reason,
never followed into a FIFO, a device or a file too large to be one."""

import os

import pytest

from engine.small_file import read_small_text


def test_a_small_text_file_is_read_and_anything_else_is_refused_with_a_reason(tmp_path):
    (tmp_path / "song.txt").write_text("| C | G |\n")
    assert read_small_text(tmp_path / "song.txt") == "| C | G |\n"
    (tmp_path / "link.txt").symlink_to(tmp_path / "song.txt")
    assert read_small_text(tmp_path / "link.txt") == "| C | G |\n"
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big.txt").write_text("x" * 101)
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    for path, kwargs, why in (
        (tmp_path / "link.txt", {"follow_links": False}, "a link"),
        (tmp_path / "fifo", {}, "not a plain file"),
        ("/dev/zero", {}, "not a plain file"),
        (tmp_path, {}, "not a plain file"),
        (tmp_path / "big.txt", {"limit": 100}, "too large"),
        (tmp_path / "latin.txt", {}, "not UTF-8"),
    ):
        with pytest.raises(ValueError, match=why):
            read_small_text(path, **kwargs)
    with pytest.raises(FileNotFoundError):
        read_small_text(tmp_path / "missing.txt")
