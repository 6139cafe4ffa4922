"""Plain public-domain text for objectives that need no questions, and haystacks for needle tests.

Sources, in order of preference for long natural prose:
  austen        six Jane Austen novels (Debian `r-cran-janeaustenr`; read through `Rscript`, cached)
  state         US constitution and declaration (Debian `miscfiles`)
  jargon        the Jargon File (Debian `jargon-text`), table rows dropped
  pydoc         CPython's `pydoc_data.topics` (always present: the floor every machine has)
Anything missing is skipped silently: a bare machine still gets pydoc. BIG-bench files are never
read here (they carry a "not for training corpora" canary).
"""
from __future__ import annotations

import gzip
import logging
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..paths import cache_root

log = logging.getLogger(__name__)

Document = tuple[str, str]  # (name, text)

_STATE_FILES = ("/usr/share/state/us-constitution.gz", "/usr/share/state/us-declaration.gz")
_JARGON_FILE = "/usr/share/doc/jargon-text/jargon.txt.gz"
_AUSTEN_BOOKS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")
_BOX = re.compile(r"[│─┼├┤┌┐└┘┬┴]")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks with hard line wraps undone."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if block:
            out.append(block)
    return out


def _read_gz(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    with gzip.open(p, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def pydoc_documents() -> list[Document]:
    from pydoc_data.topics import topics

    return [(f"pydoc:{name}", text) for name, text in sorted(topics.items())]


def state_documents() -> list[Document]:
    docs = []
    for path in _STATE_FILES:
        text = _read_gz(path)
        if text:
            docs.append((f"state:{Path(path).name.removesuffix('.gz')}", text))
    return docs


def jargon_documents() -> list[Document]:
    """The Jargon File as one document of entries; tables (box drawing) are dropped."""
    text = _read_gz(_JARGON_FILE)
    if not text:
        return []
    keep = [p for p in re.split(r"\n\s*\n", text) if not _BOX.search(p)]
    return [("jargon", "\n\n".join(keep))]


def austen_documents(cache: Path | None = None) -> list[Document]:
    """The novels, exported once with `Rscript` (the package stores them as R data) into the cache."""
    cache = cache or cache_root() / "corpora" / "austen"
    pkg = Path("/usr/lib/R/site-library/janeaustenr")
    docs = []
    for book in _AUSTEN_BOOKS:
        path = cache / f"{book}.txt"
        if not path.is_file():
            if not pkg.is_dir() or not shutil.which("Rscript"):
                return []
            try:
                text = subprocess.run(["Rscript", "-e", f"writeLines(janeaustenr::{book})"], check=True,
                                      capture_output=True, text=True, timeout=120).stdout
            except (subprocess.SubprocessError, OSError) as e:
                log.warning("could not export %s from janeaustenr: %s", book, e)
                return []
            cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        docs.append((f"austen:{book}", path.read_text(encoding="utf-8")))
    return docs


SOURCES: dict[str, Callable[[], list[Document]]] = {
    "austen": austen_documents,
    "state": state_documents,
    "jargon": jargon_documents,
    "pydoc": pydoc_documents,
}


def load_documents(sources: Sequence[str] | None = None) -> list[Document]:
    """All documents of the named sources (default: every source) that this machine has."""
    names = list(sources) if sources else list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown corpus sources {unknown}; known: {', '.join(SOURCES)}")
    docs: list[Document] = []
    for name in names:
        found = SOURCES[name]()
        if not found:
            log.info("corpus source %s is not installed; skipping it", name)
        docs.extend(found)
    return docs


def available_sources() -> list[str]:
    return [name for name, load in SOURCES.items() if load()]


def _token_len(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _pieces(tokenizer, paragraph: str, max_tokens: int) -> list[str]:
    """A paragraph, cut at sentence ends (or hard, in tokens) so no piece exceeds `max_tokens`."""
    if _token_len(tokenizer, paragraph) <= max_tokens:
        return [paragraph]
    out, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        candidate = f"{current} {sentence}".strip()
        if current and _token_len(tokenizer, candidate) > max_tokens:
            out.append(current)
            candidate = sentence
        current = candidate
    if current:
        out.append(current)
    final = []
    for piece in out:  # a single sentence longer than the limit: cut its tokens
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        for i in range(0, len(ids), max_tokens):
            final.append(tokenizer.decode(ids[i:i + max_tokens]).strip())
    return [p for p in final if p]


def iter_passages(min_tokens: int, max_tokens: int, tokenizer, seed: int = 0,
                  sources: Sequence[str] | None = None) -> Iterator[str]:
    """Passages of `min_tokens`..`max_tokens` tokens made of consecutive whole paragraphs.

    Documents are visited in a seeded order, and each starts at a seeded paragraph, so different
    seeds see different text first; one pass covers every document once. Trailing scraps shorter
    than `min_tokens` are dropped rather than padded.
    """
    if not 0 < min_tokens <= max_tokens:
        raise ValueError("need 0 < min_tokens <= max_tokens")
    rng = random.Random(f"d2l-corpora:{seed}")
    docs = load_documents(sources)
    rng.shuffle(docs)
    for _, text in docs:
        paras = paragraphs(text)
        if not paras:
            continue
        start = rng.randrange(len(paras))
        current: list[str] = []
        used = 0
        for para in paras[start:] + paras[:start]:
            for piece in _pieces(tokenizer, para, max_tokens):
                n = _token_len(tokenizer, piece)
                if current and used + n > max_tokens:
                    if used >= min_tokens:
                        yield _fit(tokenizer, "\n\n".join(current), max_tokens)
                    current, used = [], 0
                current.append(piece)
                used += n + 1  # the joining blank line costs about a token
        if current and used >= min_tokens:
            yield _fit(tokenizer, "\n\n".join(current), max_tokens)


def _fit(tokenizer, text: str, max_tokens: int) -> str:
    """Joins can merge tokens differently than the pieces did; trim the rare overshoot."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def long_text(n_tokens: int, tokenizer, seed: int = 0,
              prefer: Sequence[str] = ("austen", "state", "jargon", "pydoc")) -> str:
    """About `n_tokens` tokens of continuous prose from the first preferred source that has enough.

    Used as the haystack of needle tests, where natural narrative text is the realistic case.
    """
    rng = random.Random(f"d2l-haystack:{seed}")
    for source in prefer:
        docs = load_documents([source])
        if not docs:
            continue
        text = "\n\n".join(paragraphs("\n\n".join(t for _, t in docs)))
        if len(text) < 6 * n_tokens:  # English runs ~4-5 characters a token; keep a margin
            continue
        # start on a paragraph boundary so the haystack reads naturally
        start_char = text.rfind("\n\n", 0, rng.randrange(max(1, len(text) - 8 * n_tokens))) + 2
        window = tokenizer(text[start_char:start_char + 12 * n_tokens], add_special_tokens=False)["input_ids"]
        if len(window) >= n_tokens:
            return tokenizer.decode(window[:n_tokens])
    raise ValueError(f"no installed corpus has {n_tokens} tokens of continuous text")
