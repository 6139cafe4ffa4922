"""Result files: one JSON per scenario, each carrying the conditions it was measured under."""
from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA = 1
FILES = {"adapters": "adapters.json", "qa": "qa.json", "memory": "memory.json", "uploads": "uploads.json",
         "store": "store.json", "priority": "uploads-priority.json"}


def _clean(x):
    """JSON has no NaN/inf: write null, so every reader parses the files."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def write(out_dir: Path, scenario: str, data: dict, meta: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILES[scenario]
    doc = {"schema": SCHEMA, "scenario": scenario, "meta": meta, **data}
    path.write_text(json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    return path


def read(out_dir: Path, scenario: str) -> dict | None:
    path = out_dir / FILES[scenario]
    return json.loads(path.read_text()) if path.is_file() else None
