"""The tests' one condition wait, imported by every test folder as ``from waiting import
wait_for``: pytest puts tests/ on the import path when it loads tests/conftest.py (its
default "prepend" import mode), as it does each test's own folder for fsfaults or toy_band."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(cond: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """True once ``cond()`` holds (checked every ``step``), False when ``timeout`` runs out.
    For state another thread, process or device changes, which nothing here is notified of;
    never for ordering what a test can wait on directly."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
