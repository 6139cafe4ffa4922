"""Content-addressed adapter ids.

`doc-` + the first 32 hex digits (128 bits) of SHA-256 over the generator fingerprint (hypernetwork
checkpoint + base model) and the exact UTF-8 text. The same document under the same generator is
the same id on every replica and after every restart, so uploads deduplicate without coordination.
A fingerprint change (new checkpoint, other base model) gives new ids, so an old adapter is never
served as if it came from the new network.

A composite of several stored adapters is asked for as `doc-A+doc-B+...` (order-free) and stored
under `mix-` + a hash of its sorted parts, so every ordering and every replica finds one copy.

Ids are matched against one strict pattern before anything touches the disk: an id is only ever
used as a single path component, and `..`, `/`, NUL or huge strings are plain "not found".
"""
from __future__ import annotations

import hashlib
import re

PREFIX = "doc-"
MIX_PREFIX = "mix-"
_HEX = 32
_PATTERN = re.compile(rf"^{PREFIX}[0-9a-f]{{{_HEX}}}$")
_ADAPTER_PATTERN = re.compile(rf"^(?:{PREFIX}|{MIX_PREFIX})[0-9a-f]{{{_HEX}}}$")
MAX_PARTS = 32  # bounds the work one composite request may ask for


def document_id(text: str, fingerprint: str) -> str:
    h = hashlib.sha256()
    h.update(b"vllm-d2l/doc/v1\0")
    h.update(fingerprint.encode("utf-8"))
    h.update(b"\0")
    h.update(text.encode("utf-8"))
    return PREFIX + h.hexdigest()[:_HEX]


def is_document_id(value: object) -> bool:
    """True only for well-formed ids; safe to call on anything a client sends."""
    return isinstance(value, str) and len(value) == len(PREFIX) + _HEX and bool(_PATTERN.match(value))


def is_adapter_id(value: object) -> bool:
    """A stored folder's name: a document id or a composite's `mix-` id."""
    return isinstance(value, str) and len(value) == len(PREFIX) + _HEX and bool(_ADAPTER_PATTERN.match(value))


def composite_id(parts: list[str]) -> str:
    h = hashlib.sha256(b"vllm-d2l/mix/v1\0" + "\0".join(sorted(set(parts))).encode())
    return MIX_PREFIX + h.hexdigest()[:_HEX]


def split_composite(model: object) -> list[str] | None:
    """The pieces of a `doc-A+doc-B` model name, or None when the name is not meant as one (no
    `+`, or no piece that looks like a document id): those are left for vLLM to answer."""
    if not isinstance(model, str) or "+" not in model or len(model) > MAX_PARTS * (len(PREFIX) + _HEX + 1) + 64:
        return None
    pieces = [p.strip() for p in model.split("+")]
    return pieces if any(p.startswith(PREFIX) for p in pieces) else None
