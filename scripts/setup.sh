#!/usr/bin/env bash
# Create .venv and install vtg-core with everything its tests and the demo run need.
# Idempotent: a second run only checks that what is installed is still what is asked for.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true

# torch first, pinned to the CPU-usable pair tested here (torch 2.13's wheel has no working
# torchvision beside it; transformers' Qwen video processors need torchvision).
if ! "$VPY" -c "import torch, torchvision" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "^WARNING: Location" || true
fi

"$VPY" -m pip install -q -e ".[all]" 2>&1 | grep -v "^WARNING: Location" || true
for extra in examples/*/ plugins/*/; do
  [ -f "$extra/pyproject.toml" ] || continue
  "$VPY" -m pip install -q -e "$extra" 2>&1 | grep -v "^WARNING: Location" || true
done
"$VPY" -c "import vtg_core, torch, transformers, trl, peft; print('vtg', vtg_core.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__)"
