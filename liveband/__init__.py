"""LiveBand: a real-time AI accompanist."""

import os
import sys

if sys.version_info < (3, 10):  # pragma: no cover - checked before anything else imports
    raise SystemExit(f"LiveBand needs Python 3.10 or newer; this is {sys.version.split()[0]}.")

__version__ = "0.1.0"

# onnxruntime (1.31) starts its telemetry at import: it writes a device id under
# ~/.cache (a warning on stderr when home is read-only) and would report over the
# network. LiveBand uses no network; set before any onnxruntime import.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
