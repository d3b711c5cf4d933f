"""Long work off the UI thread: offline render and session export run in QThreads and
report back through queued signals (widgets are never touched from these threads)."""

from __future__ import annotations

from PyQt6.QtCore import QThread, pyqtSignal


class RenderWorker(QThread):
    """Runs ``session.render_file(path, out_wav, midi_out, progress=...)`` in its own thread.

    Signals (delivered on the UI thread): progress(float 0..1), done(ok: bool, message: str).
    """

    progress = pyqtSignal(float)
    done = pyqtSignal(bool, str)

    def __init__(
        self, session, path: str, out_wav: str, midi_out: str | None = None, parent=None, stems: bool = False
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.path, self.out_wav, self.midi_out, self.stems = path, out_wav, midi_out, stems

    def _progress(self, fraction: float) -> None:
        try:
            self.progress.emit(float(max(0.0, min(1.0, fraction))))
        except (TypeError, ValueError):
            pass

    def run(self) -> None:  # Thread: render worker
        try:
            extra = {"stems": True} if self.stems else {}
            self.session.render_file(self.path, self.out_wav, self.midi_out, progress=self._progress, **extra)
        except Exception as exc:  # any failure becomes one line for the player
            self.done.emit(False, f"Could not render {self.path}: {exc}")
            return
        also = f" and {self.midi_out}" if self.midi_out else ""
        self.done.emit(True, f"Rendered {self.out_wav}{also}")


class ExportWorker(QThread):
    """Runs ``session.export_session(name, dest)``; done(ok, message) lists the files."""

    done = pyqtSignal(bool, str)

    def __init__(self, session, name: str, dest: str, parent=None) -> None:
        super().__init__(parent)
        self.session, self.name, self.dest = session, name, dest

    def run(self) -> None:  # Thread: export worker
        try:
            files = self.session.export_session(self.name, self.dest)
        except Exception as exc:
            self.done.emit(False, f"Could not export {self.name}: {exc}")
            return
        self.done.emit(True, "Exported " + ", ".join(files) if files else f"Nothing to export in {self.name}")


class CallWorker(QThread):
    """Runs one session call that may take long (e.g. ``Session.play`` loads the model the
    first time) so the window keeps drawing; done(ok, message) on the UI thread."""

    done = pyqtSignal(bool, str)

    def __init__(self, fn, parent=None) -> None:
        super().__init__(parent)
        self.fn = fn

    def run(self) -> None:  # Thread: call worker
        try:
            self.fn()
        except Exception as exc:
            self.done.emit(False, str(exc) or exc.__class__.__name__)
            return
        self.done.emit(True, "")
