"""A private Xvfb display for headless runs (the README screenshot, the entry-point test).

Starts ``Xvfb :N`` on the first free display number and stops only that process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class XvfbError(RuntimeError):
    pass


class Xvfb:
    """Context manager: ``with Xvfb() as x: env = x.env()`` (DISPLAY, QT_QPA_PLATFORM=xcb)."""

    def __init__(self, width: int = 1440, height: int = 900, depth: int = 24) -> None:
        self.size = (width, height, depth)
        self.display: int | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Xvfb":
        exe = shutil.which("Xvfb")
        if exe is None:
            raise XvfbError("'Xvfb' not found; install it with 'sudo apt-get install xvfb'")
        w, h, d = self.size
        for n in range(90 + os.getpid() % 200, 400):
            if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
                continue
            proc = subprocess.Popen(
                [exe, f":{n}", "-screen", "0", f"{w}x{h}x{d}", "-nolisten", "tcp"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    self.display, self.proc = n, proc
                    time.sleep(0.2)
                    return self
                time.sleep(0.05)
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        raise XvfbError("could not start Xvfb on any display :90-:399")

    def env(self) -> dict[str, str]:
        return {"DISPLAY": f":{self.display}", "QT_QPA_PLATFORM": "xcb"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> "Xvfb":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
