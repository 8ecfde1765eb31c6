#!/usr/bin/env bash
# Installs everything lbc needs on a fresh Debian machine: the system toolchains (apt) and a .venv
# with the Python dependencies and lbc itself (editable). Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-user cc65 dataset-fashion-mnist chromium-headless-shell"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  $PY -m venv .venv
fi
stamp=.venv/.lbc-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps -e .
  touch "$stamp"
fi

# PyTorch (the torch frontend, lbc.qat, the seed examples) in its own pinned step: the CPU build only.
# `torch==2.13.0+cpu` fails loudly where the CPU wheel is missing instead of resolving to the
# registry's multi-GB CUDA build, which an unpinned or plain ==2.13.0 request can do.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch (CPU build)"
  # pip finds the local CPU wheel through its find-links setting (PIP_FIND_LINKS or pip.conf)
  if ! .venv/bin/pip install -q "torch==2.13.0+cpu"; then
    echo "setup: WARNING: the torch 2.13.0 CPU wheel was not found; torch tests will skip" >&2
  fi
fi

# snnTorch and nirtorch (the spiking example's training and NIR export, the tests that compare with
# snnTorch) after torch, without dependencies so that nothing can pull another torch build; they need
# only torch and nir (requirements.txt).
if .venv/bin/python -c "import torch" 2>/dev/null && ! .venv/bin/python -c "import snntorch, nirtorch" 2>/dev/null; then
  echo "setup: installing snntorch and nirtorch"
  .venv/bin/pip install -q --no-deps "snntorch==1.0.0" "nirtorch==2.6" || \
    echo "setup: WARNING: snntorch/nirtorch could not be installed; the snnTorch comparisons will skip" >&2
fi
