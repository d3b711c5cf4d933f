"""LiveBand: a real-time AI accompanist."""
import sys

if sys.version_info < (3, 10):  # pragma: no cover - checked before anything else imports
    raise SystemExit(f"LiveBand needs Python 3.10 or newer; this is {sys.version.split()[0]}.")

__version__ = "0.1.0"
