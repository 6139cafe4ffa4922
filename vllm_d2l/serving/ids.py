"""Content-addressed adapter ids.

`doc-` + the first 32 hex digits (128 bits) of SHA-256 over the generator fingerprint (hypernetwork
checkpoint + base model) and the exact UTF-8 text. The same document under the same generator is
the same id on every replica and after every restart, so uploads deduplicate without coordination.
A fingerprint change (new checkpoint, other base model) gives new ids, so an old adapter is never
served as if it came from the new network.

Ids are matched against one strict pattern before anything touches the disk: an id is only ever
used as a single path component, and `..`, `/`, NUL or huge strings are plain "not found".
"""
from __future__ import annotations

import hashlib
import re

PREFIX = "doc-"
_HEX = 32
_PATTERN = re.compile(rf"^{PREFIX}[0-9a-f]{{{_HEX}}}$")


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
