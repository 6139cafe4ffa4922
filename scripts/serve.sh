#!/usr/bin/env bash
# Set up (first run only), then serve the default model and hypernetwork on 127.0.0.1:8000.
# Any vLLM flag may follow, e.g. `bash scripts/serve.sh --port 9000 --max-loras 8`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vllm-d2l serve "$@"
