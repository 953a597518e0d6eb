#!/usr/bin/env bash
# Create a virtual environment and install vtg-core with everything its tests and the demo run need.
#
#   bash scripts/setup.sh             .venv: vtg-core[all], the example plugin and every plugin in
#                                     plugins/, at the newest releases vtg-core's ranges allow
#   bash scripts/setup.sh --unsloth   .venv-unsloth: the same plus vtg-backend-unsloth[unsloth], so pip
#                                     resolves everything inside unsloth's caps (transformers <= 5.17,
#                                     trl <= 1.15, datasets < 5); CI runs the core suite there too
#
# Idempotent: a second run only checks that what is installed is still what is asked for.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
UNSLOTH=0
case "${1:-}" in
  "") ;;
  --unsloth) VENV=.venv-unsloth; UNSLOTH=1 ;;
  *) echo "usage: bash scripts/setup.sh [--unsloth]" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY=$VENV/bin/python
"$VPY" -m pip install -q --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true

# torch first, pinned to the CPU-usable pair tested here (torch 2.13's wheel has no working
# torchvision beside it; transformers' Qwen video processors need torchvision).
if ! "$VPY" -c "import torch, torchvision" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "^WARNING: Location" || true
fi

# One pip call for the core, the examples and the plugins: one resolution, so no later install can
# move a package out of a range that an earlier one asked for (unsloth's caps above all).
targets=(-e ".[all]")
for dir in examples/*/ plugins/*/; do
  [ -f "$dir/pyproject.toml" ] || continue
  dir=${dir%/}
  if [ "$UNSLOTH" = 1 ] && [ "$dir" = plugins/vtg-backend-unsloth ]; then
    targets+=(-e "$dir[unsloth]")
  else
    targets+=(-e "$dir")
  fi
done
"$VPY" -m pip install -q "${targets[@]}" 2>&1 | grep -v "^WARNING: Location" || true

"$VPY" -c "import vtg_core, torch, transformers, trl, peft; print('vtg', vtg_core.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__)"
if [ "$UNSLOTH" = 1 ]; then
  # unsloth cannot be imported without a GPU: ask its metadata, not the module.
  "$VPY" -c "from importlib.metadata import version as v; print('unsloth', v('unsloth'), '| unsloth_zoo', v('unsloth_zoo'), '| datasets', v('datasets'))"
fi
