"""Text in, `LoRAWeights` out: tokenize, chunk, encode, run the hypernetwork, concatenate.

Memory is bounded by one micro-batch of at most `batch_tokens` padded tokens (by default one
chunk's worth): a document of any length streams through the encoder and only the small per-chunk
factors are kept; several short documents share a micro-batch.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .base_model import ensure_default_model, load_model_and_tokenizer, preferred_dtype
from .encoder import Encoder, pack_chunks, read_behind
from .errors import BadDocument, MissingModel, ModelMismatch
from .hypernet import Hypernet, HypernetBase, HypernetConfig, checkpoint_fingerprint
from .lora import LoRAWeights
from .paths import cache_root, package_data_dir

log = logging.getLogger(__name__)


def default_hypernet_dir() -> Path:
    """`VLLM_D2L_HYPERNET`, else the trained checkpoint shipped in the package (`assets/hypernet`).

    A source tree without that folder (it is data, and a slimmed copy may drop it) still works end
    to end: an untrained network (an exact no-op) is then built once from a fixed seed in the cache.
    """
    chosen = _configured("VLLM_D2L_HYPERNET", "hypernet")
    if chosen is not None:
        return chosen
    config = HypernetConfig()
    tag = hashlib.sha256(config.to_json().encode()).hexdigest()[:8]
    fallback = cache_root() / "hypernets" / f"untrained-{tag}"
    if not (fallback / "model.safetensors").is_file():
        log.warning("no trained hypernetwork is installed; using an untrained one (adapters are no-ops)")
        torch.manual_seed(0)
        Hypernet(config).save(fallback)
    return fallback


def default_task_hypernet_dir() -> Path | None:
    """`VLLM_D2L_TASK_HYPERNET`, else the task checkpoint shipped in the package, else None (the
    server then reads task descriptions with the document hypernetwork)."""
    return _configured("VLLM_D2L_TASK_HYPERNET", "task_hypernet")


def _configured(env_var: str, packaged: str) -> Path | None:
    """The folder an environment variable names, else the package's checkpoint of that name."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    shipped = package_data_dir() / packaged
    return shipped if (shipped / "model.safetensors").is_file() else None


def fingerprint_of(hypernet_dir: Path, model_dir: Path | str) -> str:
    """Checkpoint and base model: what an adapter id must change with."""
    return f"{checkpoint_fingerprint(hypernet_dir)}:{Path(model_dir).resolve().name}"


# Descriptions that ask for nothing: the point a guided task adapter is measured from (`Generator.guidance`).
GUIDANCE_ANCHORS = ("You are a helpful assistant.", "Answer the question you are asked.", "Be clear and accurate.")


def decode_text(text: str | bytes) -> str:
    """Accept str or UTF-8 bytes; refuse what cannot be a document, naming why."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadDocument(f"document is not valid UTF-8 (byte {e.start}: {bytes(text)[e.start:e.start + 1]!r})") from None
    if not isinstance(text, str):
        raise BadDocument(f"document must be text, got {type(text).__name__}")
    if not text.strip():
        raise BadDocument("document is empty or only whitespace")
    if "\x00" in text:
        raise BadDocument("document contains NUL characters")
    return text


@dataclass
class Internalized:
    """One document's adapter and what it cost."""

    weights: LoRAWeights
    tokens: int
    chunks: int
    seconds: float
    # the document's folded memory, for kinds that keep one (`HypernetBase.keeps_memory`): what
    # `Generator.pool` composes several documents from
    memory: dict[str, torch.Tensor] | None = None

    def summary(self) -> str:
        return (f"tokens={self.tokens} chunks={self.chunks} rank={self.weights.rank} "
                f"bytes={self.weights.nbytes} seconds={self.seconds:.2f}")


class Generator:
    """Owns the frozen base model (as encoder), its tokenizer and the hypernetwork."""

    def __init__(self, model, tokenizer, hypernet: HypernetBase, base_model_name: str, fingerprint: str = "",
                 chunk_tokens: int | None = None, batch_tokens: int | None = None,
                 adapter_dtype: torch.dtype = torch.bfloat16, chunk_overlap: int | None = None,
                 guidance: float = 1.0):
        hypernet.config.check_base_model(model.config)
        self.model, self.tokenizer, self.hypernet = model, tokenizer, hypernet.eval()
        hypernet.bind_tokenizer(tokenizer)
        self.encoder = Encoder(model, hypernet.config.source_layers, hypernet.capture)
        self.base_model_name = base_model_name
        self.fingerprint = fingerprint
        self.chunk_tokens = chunk_tokens or hypernet.config.chunk_tokens  # default: what it was trained on
        self.batch_tokens = batch_tokens or self.chunk_tokens  # encoder micro-batch budget (padded tokens)
        # context each chunk after the first is read behind (not stored; `HypernetConfig.chunk_overlap`)
        self.chunk_overlap = hypernet.config.chunk_overlap if chunk_overlap is None else chunk_overlap
        if self.chunk_overlap and not hypernet.keeps_memory:
            raise ValueError(f"a {hypernet.config.kind} hypernetwork reads chunks without context (chunk_overlap=0)")
        self.adapter_dtype = adapter_dtype
        # Guidance s > 1 writes B_anchor + s (B - B_anchor): the part of an adapter that this text
        # adds over a text asking for nothing, turned up, as classifier-free guidance does with
        # logits. Exact in weight space because every text's adapter shares its A factors. Off (1) by
        # default: on the task sets it carried out more sign-offs and opening phrases, but broke JSON
        # keys and cost answers (README, "Guided adapters").
        if not guidance > 0:
            raise ValueError(f"guidance must be > 0, got {guidance}")
        if guidance != 1.0 and not hypernet.keeps_memory:
            raise ModelMismatch(f"a {hypernet.config.kind} hypernetwork writes A per text, so its adapters cannot be guided")
        self.guidance = guidance
        if guidance != 1.0:  # a guided adapter is another adapter: its id must differ
            self.fingerprint = f"{fingerprint}:guidance={guidance:g}"
        self._anchor: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def load(cls, hypernet_dir: Path | str | None = None, model_dir: Path | str | None = None,
             encoder_dtype: torch.dtype | None = None, **kwargs) -> "Generator":
        """`encoder_dtype`: the base model's (None: `preferred_dtype`, bf16 where the CPU has it)."""
        model_dir = Path(model_dir) if model_dir else ensure_default_model()
        encoder_dtype = encoder_dtype or preferred_dtype()
        hypernet_dir = Path(hypernet_dir) if hypernet_dir else default_hypernet_dir()
        if not hypernet_dir.is_dir():
            raise MissingModel(f"hypernetwork folder not found: {hypernet_dir}")
        model, tokenizer = load_model_and_tokenizer(model_dir, dtype=encoder_dtype)
        hypernet = Hypernet.load(hypernet_dir, model.config)
        return cls(model, tokenizer, hypernet, str(model_dir), fingerprint=fingerprint_of(hypernet_dir, model_dir),
                   **kwargs)

    def with_hypernet(self, hypernet_dir: Path | str) -> "Generator":
        """Another generator on this one's base model (no second copy of its weights): the task
        mode's hypernetwork beside the document one."""
        hypernet_dir = Path(hypernet_dir)
        if not hypernet_dir.is_dir():
            raise MissingModel(f"hypernetwork folder not found: {hypernet_dir}")
        hypernet = Hypernet.load(hypernet_dir, self.model.config)
        fp = fingerprint_of(hypernet_dir, self.base_model_name)
        return Generator(self.model, self.tokenizer, hypernet, self.base_model_name, fingerprint=fp,
                         adapter_dtype=self.adapter_dtype)

    # ----------------------------------------------------------------------------- text -> chunks
    def tokenize(self, text: str | bytes, max_tokens: int | None = None) -> list[int]:
        ids = self.tokenizer(decode_text(text), add_special_tokens=False)["input_ids"]
        if not ids:
            raise BadDocument("document has no tokens")
        if max_tokens is not None and len(ids) > max_tokens:
            raise BadDocument(f"document has {len(ids)} tokens; the limit is {max_tokens}")
        return ids

    def split(self, ids: list[int], chunk_tokens: int | None = None) -> list[list[int]]:
        size = chunk_tokens or self.chunk_tokens
        if size < 1:
            raise ValueError("chunk_tokens must be >= 1")
        return [ids[i:i + size] for i in range(0, len(ids), size)]

    # ----------------------------------------------------------------------------- chunks -> factors
    def micro_batches(self, chunks: list[list[int]]) -> list[list[int]]:
        """Indices of chunks encoded together: as many as fit `batch_tokens` padded tokens.

        Short documents share a batch; a long document goes one chunk at a time, so peak memory
        is that of one chunk whatever the document's length.
        """
        batches: list[list[int]] = []
        width = 0
        for i, c in enumerate(chunks):
            w = max(width, len(c))
            if batches and w * (len(batches[-1]) + 1) <= self.batch_tokens:
                batches[-1].append(i)
                width = w
            else:
                batches.append([i])
                width = len(c)
        return batches

    @torch.no_grad()
    def document_parts(self, docs: list[list[list[int]]], progress: bool = False) -> list[dict]:
        """One folded part per document (see `HypernetBase`), encoding micro-batches of chunks.

        Chunks are right-padded within a micro-batch; each chunk's part is folded into its
        document's as soon as it is read, so only one part per document is ever held. With
        `chunk_overlap`, a chunk after its document's first is encoded behind the tokens before it
        as context that is not stored.
        """
        behind = [c for d in docs for c in read_behind(d, self.chunk_overlap)]  # (tokens, context length)
        chunks = [c for c, _ in behind]
        owner = [i for i, d in enumerate(docs) for _ in d]
        acc: list[dict | None] = [None] * len(docs)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(chunks), unit="chunk", desc="internalizing")
        pad = self.tokenizer.pad_token_id or 0
        for batch in self.micro_batches(chunks):
            ids, mask, write = pack_chunks([behind[i] for i in batch], pad)
            parts = self.hypernet.read_chunks(self.encoder(ids, mask.long()), mask, write)
            for i, part in zip(batch, parts):
                acc[owner[i]] = self.hypernet.fold(acc[owner[i]], part)
            if bar:
                bar.update(len(batch))
        if bar:
            bar.close()
        return acc  # type: ignore[return-value]

    def assemble(self, part: dict, meta: dict) -> LoRAWeights:
        """A document's folded part (plus the always-on block) as adapter weights."""
        factors = self.hypernet.emit(part)
        if self.guidance != 1.0:
            factors = self.guided(factors)
            meta = {**meta, "guidance": self.guidance}
        a = {k: v[0].to(self.adapter_dtype).contiguous() for k, v in factors.items()}
        b = {k: v[1].to(self.adapter_dtype).contiguous() for k, v in factors.items()}
        return LoRAWeights(a, b, self.base_model_name, meta)

    def guided(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{module: (A, B)} -> (A, B_anchor + s (B - B_anchor)), B_anchor the mean of the anchors' B.
        The always-on block is the same in every adapter, so it is left as it is."""
        if self._anchor is None:
            docs = [self.split(self.tokenize(t)) for t in GUIDANCE_ANCHORS]
            anchors = [self.hypernet.emit(p) for p in self.document_parts(docs)]
            self._anchor = {k: (anchors[0][k][0], torch.stack([f[k][1] for f in anchors]).mean(0)) for k in anchors[0]}
        out = {}
        for k, (a, b) in factors.items():
            a0, b0 = self._anchor[k]
            if not torch.equal(a, a0):
                raise ValueError(f"{k}: this adapter's A differs from the anchors', so it cannot be guided")
            out[k] = (a, b0 + self.guidance * (b - b0))  # [d_out, R]
        return out

    # ----------------------------------------------------------------------------- public API
    def internalize(self, text: str | bytes, chunk_tokens: int | None = None, max_rank: int | None = None,
                    max_tokens: int | None = None, progress: bool = False) -> Internalized:
        return self.internalize_many([text], chunk_tokens, max_rank, max_tokens, progress)[0]

    @torch.no_grad()
    def internalize_many(self, texts: list[str | bytes], chunk_tokens: int | None = None,
                         max_rank: int | None = None, max_tokens: int | None = None,
                         progress: bool = False) -> list[Internalized]:
        """Several documents in one pass: their chunks share encoder batches."""
        t0 = time.perf_counter()
        docs = [self.split(self.tokenize(t, max_tokens), chunk_tokens) for t in texts]
        parts = self.document_parts(docs, progress=progress and sum(len(d) for d in docs) > 1)
        seconds = (time.perf_counter() - t0) / len(texts)
        results = []
        for d, part in zip(docs, parts):
            n_tokens = sum(len(c) for c in d)
            meta = {"tokens": n_tokens, "chunks": len(d), "hypernet": self.fingerprint,
                    "chunk_tokens": chunk_tokens or self.chunk_tokens, "chunk_overlap": self.chunk_overlap,
                    "layout": self.hypernet.layout(part)}
            w = self.assemble(part, meta)
            if max_rank is not None:
                w = w.cap_rank(max_rank)
            memory = {k: v.detach().cpu() for k, v in part.items()} if self.hypernet.keeps_memory else None
            results.append(Internalized(w, n_tokens, len(d), seconds, memory))
        return results

    @torch.no_grad()
    def pool(self, memories: list[dict[str, torch.Tensor]], meta: dict | None = None) -> LoRAWeights:
        """One adapter of several documents' memories folded together, as if they were one document
        (each keeps its own chunks): for the token kind with the whitened read, one least-squares
        memory over all their tokens rather than the sum of separately whitened ones."""
        if not self.hypernet.keeps_memory:
            raise ValueError(f"a {self.hypernet.config.kind} hypernetwork keeps no memory to pool")
        if not memories:
            raise ValueError("pool needs at least one memory")
        part = None
        for m in memories:
            part = self.hypernet.fold(part, {k: v.float() for k, v in m.items()})
        meta = {"hypernet": self.fingerprint, "chunk_tokens": self.chunk_tokens, **(meta or {}),
                "layout": self.hypernet.layout(part)}
        return self.assemble(part, meta)
