"""Plain public-domain text for objectives that need no questions, and haystacks for needle tests.

Sources, in order of preference for long natural prose:
  austen        six Jane Austen novels (Debian `r-cran-janeaustenr`; read through `Rscript`, cached)
  state         US constitution and declaration (Debian `miscfiles`)
  jargon        the Jargon File (Debian `jargon-text`), table rows dropped
  pydoc         CPython's `pydoc_data.topics` (always present: the floor every machine has)
Anything missing is skipped silently: a bare machine still gets pydoc. A training run that names
its sources (`corpora` in its config) refuses to start without them instead (`require`), because
the same run on other text trains and scores on another distribution. A machine that cannot
install the packages reads a folder written by `export` on one that has them: set
VLLM_D2L_CORPORA to it. BIG-bench files are never read here (they carry a "not for training
corpora" canary).

    python -m vllm_d2l.datasets.corpora                # which sources this machine has
    python -m vllm_d2l.datasets.corpora --export DIR   # copy them into DIR (gzip, about 2 MB)
"""
from __future__ import annotations

import argparse
import gzip
import logging
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import MissingCorpora
from ..paths import cache_root

log = logging.getLogger(__name__)

Document = tuple[str, str]  # (name, text)

_STATE_FILES = ("/usr/share/state/us-constitution.gz", "/usr/share/state/us-declaration.gz")
_JARGON_FILE = "/usr/share/doc/jargon-text/jargon.txt.gz"
_AUSTEN_BOOKS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")
_BOX = re.compile(r"[│─┼├┤┌┐└┘┬┴]")
# the Debian packages behind each source (pydoc comes with Python)
PACKAGES = {"austen": "r-cran-janeaustenr", "state": "miscfiles", "jargon": "jargon-text"}
EXPORTED_ENV = "VLLM_D2L_CORPORA"
_EXPORTED_STATE = ("us-constitution.gz", "us-declaration.gz")  # file names in an exported folder
_EXPORTED_JARGON = "jargon.txt.gz"


def _exported() -> Path | None:
    """The folder `export` wrote, when VLLM_D2L_CORPORA names one: then it is the only place read."""
    folder = os.environ.get(EXPORTED_ENV)
    return Path(folder) if folder else None


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
    base = _exported()
    for path in [str(base / "state" / n) for n in _EXPORTED_STATE] if base else _STATE_FILES:
        text = _read_gz(path)
        if text:
            docs.append((f"state:{Path(path).name.removesuffix('.gz')}", text))
    return docs


def jargon_documents() -> list[Document]:
    """The Jargon File as one document of entries; tables (box drawing) are dropped."""
    base = _exported()
    text = _read_gz(str(base / "jargon" / _EXPORTED_JARGON) if base else _JARGON_FILE)
    if not text:
        return []
    keep = [p for p in re.split(r"\n\s*\n", text) if not _BOX.search(p)]
    return [("jargon", "\n\n".join(keep))]


def austen_documents(cache: Path | None = None) -> list[Document]:
    """The novels, exported once with `Rscript` (the package stores them as R data) into the cache."""
    base = _exported()
    if base:
        texts = [_read_gz(str(base / "austen" / f"{book}.txt.gz")) for book in _AUSTEN_BOOKS]
        return [(f"austen:{b}", t) for b, t in zip(_AUSTEN_BOOKS, texts)] if all(texts) else []
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


def require(names: Sequence[str]) -> None:
    """Raise `MissingCorpora`, naming what to install, unless every named source is readable."""
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown corpus sources {unknown}; known: {', '.join(SOURCES)}")
    missing = [n for n in names if not SOURCES[n]()]
    if missing:
        packages = " ".join(PACKAGES[n] for n in missing if n in PACKAGES)
        raise MissingCorpora(
            f"this run reads corpora this machine lacks: {', '.join(missing)}. Install them "
            f"(apt-get install {packages}), or point {EXPORTED_ENV} at a folder written by "
            f"`python -m vllm_d2l.datasets.corpora --export DIR` on a machine that has them")


def export(dest: Path) -> list[str]:
    """Write every installed source but pydoc into `dest`, gzipped, in the layout `_exported` reads."""
    if _exported():
        raise ValueError(f"{EXPORTED_ENV} is set: export from the installed packages, with it unset")
    written = []
    for name, docs in (("state", state_documents()), ("jargon", jargon_documents()), ("austen", austen_documents())):
        if not docs:
            continue
        if name == "jargon":  # the whole file, as the package has it: the reader drops the tables
            files = {_EXPORTED_JARGON: _read_gz(_JARGON_FILE)}
        elif name == "state":
            files = {n: _read_gz(p) for n, p in zip(_EXPORTED_STATE, _STATE_FILES)}
        else:
            files = {f"{doc.split(':', 1)[1]}.txt.gz": text for doc, text in docs}
        (dest / name).mkdir(parents=True, exist_ok=True)
        for fname, text in files.items():
            with gzip.open(dest / name / fname, "wt", encoding="utf-8", compresslevel=9) as fh:
                fh.write(text)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.corpora", description=__doc__.splitlines()[0])
    p.add_argument("--export", type=Path, metavar="DIR", help="copy the installed sources into DIR")
    args = p.parse_args(argv)
    if args.export:
        print(f"exported {', '.join(export(args.export)) or 'nothing'} to {args.export}")
    else:
        print(", ".join(available_sources()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


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
