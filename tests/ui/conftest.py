"""UI test fixtures: settings in a temp folder, a themed QApplication, a fake session for
pure widget tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    """Every UI test writes its QSettings under its own tmp folder, never to ~/.config."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture()
def themed_app(qapp):
    from ui.app import make_app

    return make_app()


@pytest.fixture()
def fake_session():
    from fake_session import FakeSession

    return FakeSession()
