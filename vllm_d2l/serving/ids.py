"""Content-addressed adapter ids.

`doc-` (a document) or `task-` (a task description) + the first 32 hex digits (128 bits) of SHA-256
over the kind, the generator fingerprint (hypernetwork checkpoint + base model) and the exact UTF-8
text. The same text under the same generator is the same id on every replica and after every
restart, so uploads deduplicate without coordination. A fingerprint change (new checkpoint, other
base model) gives new ids, so an old adapter is never served as if it came from the new network.

A composite of several stored adapters is asked for as `doc-A+doc-B+task-C...` (order-free) and
stored under `mix-` + a hash of its sorted parts, so every ordering and every replica finds one copy.

Ids are matched against one strict pattern before anything touches the disk: an id is only ever
used as a single path component, and `..`, `/`, NUL or huge strings are plain "not found".
"""
from __future__ import annotations

import hashlib
import re

PREFIX = "doc-"
TASK_PREFIX = "task-"
MIX_PREFIX = "mix-"
KINDS = {"document": PREFIX, "task": TASK_PREFIX}  # what an upload can be, and its id's prefix
_HEX = 32
_MAX_LEN = len(TASK_PREFIX) + _HEX
_PATTERN = re.compile(rf"^{PREFIX}[0-9a-f]{{{_HEX}}}$")
_UPLOAD_PATTERN = re.compile(rf"^(?:{PREFIX}|{TASK_PREFIX})[0-9a-f]{{{_HEX}}}$")
_ADAPTER_PATTERN = re.compile(rf"^(?:{PREFIX}|{TASK_PREFIX}|{MIX_PREFIX})[0-9a-f]{{{_HEX}}}$")
MAX_PARTS = 32  # bounds the work one composite request may ask for


def upload_id(text: str, fingerprint: str, kind: str = "document") -> str:
    """The id of `text` read as `kind` ("document" or "task") by the generator `fingerprint`."""
    h = hashlib.sha256()
    h.update(b"vllm-d2l/doc/v1\0" if kind == "document" else f"vllm-d2l/{kind}/v1\0".encode())
    h.update(fingerprint.encode("utf-8"))
    h.update(b"\0")
    h.update(text.encode("utf-8"))
    return KINDS[kind] + h.hexdigest()[:_HEX]


def document_id(text: str, fingerprint: str) -> str:
    return upload_id(text, fingerprint, "document")


def _matches(pattern: re.Pattern, value: object) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_LEN and bool(pattern.match(value))


def is_document_id(value: object) -> bool:
    """True only for well-formed document ids; safe to call on anything a client sends."""
    return _matches(_PATTERN, value)


def is_upload_id(value: object) -> bool:
    """A document's or a task's id: what a client uploads and names as a model."""
    return _matches(_UPLOAD_PATTERN, value)


def is_adapter_id(value: object) -> bool:
    """A stored folder's name: an upload's id or a composite's `mix-` id."""
    return _matches(_ADAPTER_PATTERN, value)


def kind_of(value: object) -> str | None:
    """"document" or "task" for an upload's id, else None."""
    if not is_upload_id(value):
        return None
    return "task" if value.startswith(TASK_PREFIX) else "document"  # type: ignore[union-attr]


def composite_id(parts: list[str]) -> str:
    h = hashlib.sha256(b"vllm-d2l/mix/v1\0" + "\0".join(sorted(set(parts))).encode())
    return MIX_PREFIX + h.hexdigest()[:_HEX]


def split_composite(model: object) -> list[str] | None:
    """The pieces of a `doc-A+task-B` model name, or None when the name is not meant as one (no
    `+`, or no piece that looks like an upload's id): those are left for vLLM to answer."""
    if not isinstance(model, str) or "+" not in model or len(model) > MAX_PARTS * (_MAX_LEN + 1) + 64:
        return None
    pieces = [p.strip() for p in model.split("+")]
    return pieces if any(p.startswith(tuple(KINDS.values())) for p in pieces) else None
