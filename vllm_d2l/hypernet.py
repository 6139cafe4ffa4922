"""Hypernetworks: what reads a document's activations and writes a LoRA.

Two kinds share one config, checkpoint format and interface (`HypernetBase`):
  perceiver  learned queries pool each chunk into rank-8 factors (this module)
  token      a token-level ("fast-weight") generator: every document token writes one key/value
             pair into a per-layer linear memory, emitted as a fixed-rank LoRA (`fastweight.py`)

The Perceiver, per chunk:

Shape of the computation, per chunk:

    hidden states of the frozen base model, one [T, H] sheet per source layer
      -> keys/values (per-layer norm, shared projection, learned layer embedding)
    learned queries, one per (target layer, module, rank row)
      -> cross-attention to their own layer's sheet (each layer's adapter reads that layer)
      -> a small transformer over all queries (layers and modules exchange information)
      -> per-module heads: each query becomes one row of A (d_in) and one column of B (d_out)

The heads that write B start at zero (weights and bias), so a fresh hypernetwork is an exact no-op,
as a LoRA with B = 0 is; a learned per-(layer, module) gate scales B. Zero B heads with an open
gate learn from the first step; a zero gate in front of random heads would be a saddle (each
factor's gradient is proportional to the other), which we measured as a gate stuck near 0.001
for a hundred steps. A learned "bias LoRA" (a fixed adapter block whose B also starts at zero) is appended
once per document: it carries what every document needs (e.g. "answer from memory") so the
per-chunk rows can spend their rank on content.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .encoder import Encoded
from .errors import MissingModel, ModelMismatch
from .lora import module_path, module_shapes

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class HypernetConfig:
    """Everything needed to rebuild the hypernetwork and check it against a base model."""

    # the base model it was trained for (checked on load)
    base_model: str = "SmolLM2-135M-Instruct"
    base_hidden_size: int = 576
    base_num_layers: int = 30
    base_intermediate_size: int = 1536
    base_num_heads: int = 9
    base_num_kv_heads: int = 3
    # what it generates
    target_modules: list[str] = field(default_factory=lambda: ["down_proj"])
    target_layers: list[int] | None = None  # None: every layer
    rank: int = 8  # rows per chunk per module
    # Documents are read in chunks of this many tokens (one adapter block each): the length the
    # network was trained to read, since a chunk much longer than any seen in training is out of
    # distribution for the cross-attention that summarises it.
    chunk_tokens: int = 1024
    # token kind, reading only: each chunk after a document's first is encoded behind the last
    # `chunk_overlap` tokens of the text before it, which it reads as context and does not store.
    # Without it the pair of tokens a chunk boundary falls between is never stored and the tokens
    # after a boundary are read without the sentence they continue: on the needle test every miss
    # of step 16200 at 2x and 4x depth 0.5 was a fact sentence cut by a boundary. 0: plain chunks
    chunk_overlap: int = 0
    bias_rank: int = 8  # rows of the always-on block (0 disables it)
    # which hidden state feeds each target layer: hidden_states[layer + offset] (0 = embeddings)
    source_offset: int = 1
    # network size
    dim: int = 384
    heads: int = 6
    latent_blocks: int = 1
    mlp_ratio: int = 4
    # Read only what sets a token apart: values minus their mean over the chunk. Untrained
    # cross-attention is near uniform, so it pools the chunk's mean hidden state, which is nearly
    # the same for every document; the network then learns answer style from it and no content.
    # With centred values, uniform attention reads nothing and only selective attention pays.
    center_values: bool = False
    # Multiplier on the read block's attention logits. At the default init the logits have a
    # standard deviation near 0.3, so attention over a chunk starts almost uniform and gets little
    # gradient to become selective; a larger value makes each query start out reading a few tokens.
    read_sharpness: float = 1.0
    # "perceiver" or "token" (see the module docstring)
    kind: str = "perceiver"
    # token kind: width k of the learned key space; the adapter's rank is key_dim + bias_rank
    key_dim: int = 128
    # token kind: each token's key is paired with the residual stream at the next token ("next")
    # or at itself ("same"); "next" stores what the model is about to say after that token
    value_from: str = "next"
    # token kind: the summed memory is scaled by 1/sqrt(n) ("sqrt"), 1/n ("mean") or 1 ("none")
    memory_norm: str = "sqrt"
    # token kind: keys minus their mean over the document, so no document-independent mean is stored
    center_keys: bool = True
    # token kind: how the memory is read. "sum" is plain linear attention (every key answers in
    # proportion to its score, so similar keys blur each other's values); "ridge" first whitens the
    # keys, B = V S ((1 + e) t (C + e t I)^-1) with C the keys' covariance over the document and t its
    # mean eigenvalue: the least-squares map from keys to values, which a delta-rule memory
    # approaches. A learned e per layer (started at `ridge_init`) sets how far: e -> inf is "sum".
    memory_read: str = "sum"
    ridge_init: float = 1.0
    # token kind: a learned write strength per token, g_t = 2 sigmoid(u_l . m~_t + c_l), weighs the
    # token's key and value in every sum (and the count n). With u = c = 0 every g is 1, the memory
    # of a network without the gate, so a trained run can switch it on. Why: in a long document most
    # tokens are prose that no question asks about, and each of them blurs the few that matter; a
    # gate lets the memory write names and numbers harder than filler.
    write_gate: bool = False
    # token kind: the document's keys get their own map, a_t = (G_l + D_l) m~_t, while queries keep
    # G_l. Why: with one map a token's key and a question's query can only meet where the two
    # states already look alike; a stated value sits after "leaves at", its question reads "what
    # time does ... leave?", so the write side needs room to move its keys toward where the
    # questions land (attention's separate key and query maps, for the same reason). D_l starts
    # at zero, the network without it, so a trained run can switch it on. (Measured from step 4775
    # of the document run: a little worse over 225 steps; the README's ablations.)
    own_write_keys: bool = False
    # token kind: a rank-`pooled_rank` block whose B mixes `pooled_basis` learned matrices by
    # weights read from the document's mean value h_bar (c = W h_bar, B = sum_i c_i M_i; A
    # learned). Why: a task description asks the same of every reply (upper case, a sign-off, a
    # word limit), which no query recalls from one token; a mixture of learned adapters chosen by
    # the description is what Text-to-LoRA does. W starts at zero: the network without the block.
    # (Measured on the task run: lower loss for the family, no gain in compliance over 150 steps.)
    pooled_rank: int = 0
    pooled_basis: int = 16
    # token kind: every value also carries the stored token's input embedding (the token after the
    # key's, with value_from "next"), through its own map E [H, H], zero at the start: the network
    # without it, so a trained run can switch it on. Why: the deep residual stream h_t mostly says
    # what comes after token t, so a value read from it names token t itself only loosely, and the
    # adapters spelt rare names and codes nearly right ("Tobias Renner" for Tobiah, "QH" for Quill);
    # with tied embeddings E = cI would put exactly that token on top of the logits. (Measured from
    # step 9100 of the document run: the hold-out got worse over 500 steps; the README's ablations.)
    value_embed: bool = False
    # token kind: a copy path on the LM head, of rank `pointer_rank` (0: none). Every stored pair
    # writes its key, read from the final normed state at token t (what the head sees), into the
    # row of token t+1 itself: B_head = gain sum_t e_{x_{t+1}} (g_t a_t)^T (keys centred), a [vocab, k] matrix
    # with a row per distinct token of the document. A reply state that matches a stored one then
    # raises exactly that next token's logit, and no other (an induction head written as a LoRA on
    # `lm_head`). Why: the residual-stream values name a token only through the tied embedding, in
    # which a rare token's neighbours score nearly as high, and the adapters wrote near misses of
    # phrases and keys they had read ("Holy gazibre!" for "Holy guacamole!", "texture" for the key
    # "text"). The gain starts at zero: the network without it, so a trained run can switch it on.
    pointer_rank: int = 0
    base_vocab_size: int = 0  # the head's width; needed with `pointer_rank`
    # with `pointer_rank`: the copy path's keys also read the stored token's own embedding, through
    # their own maps: a_t = ((P + P_own) z~_t + P_emb e~_t) / sqrt(k_p), the query still P z~ (both
    # maps zero at the start: the path without them). Why: a key read from the final state alone
    # says what the model expects next more than which token it is, so inside "Holy guacamole!" the
    # reply's state at "Holy" raised " gu" (+1.4) hardly more than '!"' (+1.2) and "am" (+1.1),
    # and at "ole" the path raised "ac" above "ole": it knew the phrase, not the place in it.
    pointer_embed: bool = False
    # with `pointer_rank`: a stored pair also raises its token's spelling variants
    # (`token_variants.KINDS`: without its leading space, with one, without a closing "," or "."),
    # each kind by a learned weight that starts at zero (the path without them). Why: a byte-level
    # BPE spells a label or a word apart after a space and where a line starts, so a description's
    # " x)," could never be copied into the "x)" that opens a list: told "Mark the lines of your
    # list x), y), z).", every 10400 adapter opened its lists with "*" or "a".
    pointer_variants: bool = False
    # with `pointer_rank`: a key also reads the final state at the stored token itself, one place
    # ahead of the state it is stored under: a_t += P_ahead z~_{t+1} / sqrt(k_p) (P_ahead zero at the
    # start: the path without it). Why: a causal state cannot know what comes after it, so the key
    # stored before a list's first mark ("...your list" -> " g") looks like any noun's, while those
    # before the later marks ("g)," -> " r") look like a list's: told "Mark the lines of your list
    # g), r), c), n)." the 10590 adapters opened with a later mark or a trained one, never "g". The
    # state at " g" has read "list g" and can say "a first mark".
    pointer_ahead: bool = False

    def adapter_rank(self, chunks: int = 1) -> int:
        """Rank of a document's adapter: Perceiver chunks concatenate along rank; the token kind's
        rank is key_dim (+ pooled_rank) whatever the length (its chunks sum into one memory)."""
        per_document = self.key_dim + self.pooled_rank if self.kind == "token" else chunks * self.rank
        return per_document + self.bias_rank

    @property
    def layers(self) -> list[int]:
        return list(self.target_layers) if self.target_layers is not None else list(range(self.base_num_layers))

    @property
    def source_layers(self) -> list[int]:
        """hidden_states indices the encoder keeps: one per target layer, then the final normed
        states (the LM head's input, `base_num_layers`) for the copy path when no target reads
        them already, then the embeddings (0) when values or the copy path's keys read them."""
        own = [l + self.source_offset for l in self.layers]
        head = [self.base_num_layers] if self.pointer_rank and self.base_num_layers not in own else []
        return own + head + ([0] if self.value_embed or self.pointer_embed else [])

    @property
    def pointer_source(self) -> int:
        """Where the copy path's states sit among `source_layers`."""
        return self.source_layers.index(self.base_num_layers)

    def shapes(self) -> dict[str, tuple[int, int]]:
        return module_shapes(self._as_hf(), self.target_modules)

    def _as_hf(self):
        from types import SimpleNamespace
        return SimpleNamespace(hidden_size=self.base_hidden_size, intermediate_size=self.base_intermediate_size,
                               num_attention_heads=self.base_num_heads, num_key_value_heads=self.base_num_kv_heads,
                               num_hidden_layers=self.base_num_layers, head_dim=None)

    @classmethod
    def for_base_model(cls, hf_config, base_model: str, **overrides) -> "HypernetConfig":
        return cls(base_model=base_model, base_hidden_size=hf_config.hidden_size,
                   base_num_layers=hf_config.num_hidden_layers,
                   base_intermediate_size=hf_config.intermediate_size,
                   base_num_heads=hf_config.num_attention_heads,
                   base_num_kv_heads=hf_config.num_key_value_heads, base_vocab_size=hf_config.vocab_size,
                   **overrides)

    def check_base_model(self, hf_config) -> None:
        """Raise `ModelMismatch` listing every field where the base model differs."""
        pairs = {
            "hidden_size": (self.base_hidden_size, hf_config.hidden_size),
            "num_hidden_layers": (self.base_num_layers, hf_config.num_hidden_layers),
            "intermediate_size": (self.base_intermediate_size, hf_config.intermediate_size),
            "num_attention_heads": (self.base_num_heads, hf_config.num_attention_heads),
            "num_key_value_heads": (self.base_num_kv_heads, hf_config.num_key_value_heads),
        } | ({"vocab_size": (self.base_vocab_size, hf_config.vocab_size)} if self.base_vocab_size else {})
        diff = [f"{k}: hypernetwork {a}, model {b}" for k, (a, b) in pairs.items() if a != b]
        if diff:
            raise ModelMismatch(f"hypernetwork was trained for '{self.base_model}', which differs from "
                                "this base model: " + "; ".join(diff))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "HypernetConfig":
        raw = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ModelMismatch(f"unknown hypernetwork config fields {sorted(unknown)}")
        config = cls(**raw)
        config.validate()
        return config

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ModelMismatch(f"unknown hypernetwork kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens or (self.chunk_overlap and self.kind != "token"):
            raise ModelMismatch(f"chunk_overlap={self.chunk_overlap} must be below chunk_tokens={self.chunk_tokens}, "
                                "and only the token kind (whose memory sums token pairs) reads with one")
        if self.kind == "token":
            if self.value_from not in ("next", "same") or self.memory_norm not in ("sqrt", "mean", "none") \
                    or self.memory_read not in ("sum", "ridge") or not self.ridge_init > 0:
                raise ModelMismatch(f"bad token-kind settings value_from={self.value_from!r}, "
                                    f"memory_norm={self.memory_norm!r}, memory_read={self.memory_read!r}, "
                                    f"ridge_init={self.ridge_init!r}")
            if self.write_gate and self.memory_read != "ridge":  # a summed read composes by token counts
                raise ModelMismatch("write_gate needs memory_read='ridge' (documents composed by a plain "
                                    "sum read pool their token counts, which a gate makes per layer)")
            rows = self.adapter_rank() - self.bias_rank  # the head's factors pad to the rank, clear of the always-on rows
            if self.pointer_rank < 0 or (self.pointer_rank and (self.base_vocab_size < 1 or self.pointer_rank > rows)):
                raise ModelMismatch(f"bad copy path pointer_rank={self.pointer_rank} (at most {rows}, the adapter's "
                                    f"rows before its always-on block), base_vocab_size={self.base_vocab_size}")
            if self.pointer_embed and not self.pointer_rank:
                raise ModelMismatch("pointer_embed reads keys for the copy path: it needs pointer_rank")
            if self.pointer_ahead and not self.pointer_rank:
                raise ModelMismatch("pointer_ahead reads keys for the copy path: it needs pointer_rank")
            if self.pointer_variants and not self.pointer_rank:
                raise ModelMismatch("pointer_variants widens the copy path: it needs pointer_rank")
            if self.pooled_rank < 0 or self.pooled_basis < 1:
                raise ModelMismatch(f"bad pooled block pooled_rank={self.pooled_rank}, pooled_basis={self.pooled_basis}")
            if len(self.target_modules) != 1:
                raise ModelMismatch("the token kind writes one module per layer; got "
                                    f"target_modules={self.target_modules}")
            wrong = [m for m in self.target_modules if m not in RESIDUAL_WRITERS]
            if wrong:  # values come from the residual stream, so the module must write into it
                raise ModelMismatch(f"the token kind writes into the residual stream; {wrong} do not")


KINDS = ("perceiver", "token")
RESIDUAL_WRITERS = ("down_proj", "o_proj")  # the projections whose output is added to the residual stream


class HypernetBase(nn.Module):
    """What every kind shares: the always-on block, checkpoints, and the generation interface.

    A kind implements
      read_chunks(enc, mask, write) per-chunk parts, a list of dicts (no grad needed; used by `Generator`);
        `write` marks the tokens stored, the rest of `mask` being context (only the token kind reads any)
      fold(acc, part)        combine two parts of one document (associative), so documents of any
                             length stream through in bounded memory
      emit(part)             {module path: (A [R, d_in], B [d_out, R])}, the always-on block included
      batch_factors(enc, mask, owner, n_docs)
                             the same, differentiable and batched for training: A [D, R, d_in],
                             B [D, d_out, R] for D documents whose chunks are `owner`-indexed
    """

    config: HypernetConfig

    def init_bias_block(self) -> None:
        """An always-on block per (layer, module), B at zero; it learns what every document needs."""
        c = self.config
        n_layers = len(c.layers)
        if c.bias_rank:
            self.bias_a = nn.ParameterDict({m: nn.Parameter(torch.randn(n_layers, c.bias_rank, d_in) / d_in ** 0.5)
                                            for m, (d_in, _) in self.shapes.items()})
            self.bias_b = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, d_out, c.bias_rank))
                                            for m, (_, d_out) in self.shapes.items()})

    def bias_factors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The always-on block: {module path: (A [r_b, d_in], B [d_out, r_b])}."""
        if not self.config.bias_rank:
            return {}
        return {module_path(layer, m): (self.bias_a[m][i], self.bias_b[m][i])
                for m in self.config.target_modules for i, layer in enumerate(self.config.layers)}

    def layout(self, part: dict) -> dict:
        """How a document's adapter is laid out, so adapters can be composed later without the
        documents (`vllm_d2l.compose`): the always-on block is the last `always_on` rank rows, and
        the rows before it are the document's own; "concat" parts stack along rank."""
        return {"combine": "concat", "always_on": self.config.bias_rank}

    def bias_is_zero(self) -> bool:
        return all(not p.any() for p in getattr(self, "bias_b", {}).values()) if self.config.bias_rank else True

    # A kind whose folded part is small and fixed in size keeps it beside each adapter: several
    # documents then compose as one memory (`Generator.pool`), which the adapters alone cannot give
    # (e.g. the token kind's whitened read needs every document's key covariance).
    keeps_memory: bool = False

    @property
    def capture(self) -> list[str]:
        """Module paths whose inputs the encoder must keep for this kind."""
        return []

    def calibrate_(self, enc, mask) -> None:
        """Set data-dependent scales from a first batch (kinds that need none ignore it)."""

    def bind_tokenizer(self, tokenizer) -> None:
        """Take what the network needs of the base model's tokenizer (kinds that need none ignore
        it). Whoever pairs a network with its base model calls this: the generator and the trainer."""

    def document_factors(self, parts: list[tuple]) -> dict:
        """Adapters of several documents, each given as its own encoded chunks `(Encoded [n_i, .., T_i],
        mask [n_i, T_i][, write [n_i, T_i]])`: A [D, R, d_in], B [D, d_out, R]. Here the chunks are padded to one length
        and read together (`batch_factors`); a kind whose reading costs per padded slot reads each
        document apart."""
        if any(len(p) > 2 and not torch.equal(p[2], p[1]) for p in parts):
            raise ValueError(f"a {self.config.kind} hypernetwork reads every token of a chunk: it takes no context-only tokens")
        enc, mask = Encoded.concat([p[0] for p in parts], [p[1] for p in parts])
        owner = [d for d, p in enumerate(parts) for _ in range(p[1].shape[0])]
        return self.batch_factors(enc, mask, owner, len(parts))

    # ----------------------------------------------------------------------------- checkpoints
    def save(self, folder: Path | str, dtype: torch.dtype = torch.float32) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(device="cpu", dtype=dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME))
        (folder / CONFIG_NAME).write_text(self.config.to_json())
        return folder

    @classmethod
    def load(cls, folder: Path | str, hf_config=None, overrides: dict | None = None) -> "HypernetBase":
        """Load a checkpoint of any kind (its config says which).

        `overrides` change config fields on the way in (a training run that starts from a
        checkpoint with a new setting); parameters the checkpoint lacks then keep their fresh
        initial values, and every weight the checkpoint has must still fit."""
        folder = Path(folder)
        if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
            raise MissingModel(f"{folder} is not a hypernetwork checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
        config = HypernetConfig.from_json((folder / CONFIG_NAME).read_text())
        if overrides:
            config = HypernetConfig(**{**asdict(config), **overrides})
        if hf_config is not None and config.pointer_rank and not config.base_vocab_size:  # saved before the field
            config = HypernetConfig(**{**asdict(config), "base_vocab_size": hf_config.vocab_size})
        if hf_config is not None:
            config.check_base_model(hf_config)
        net = build(config)
        state = load_file(str(folder / WEIGHTS_NAME))
        missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        if overrides:
            missing = []
        if missing or unexpected:
            raise ModelMismatch(f"checkpoint {folder} does not match its config: missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]}")
        net.eval()
        return net


def build(config: HypernetConfig) -> HypernetBase:
    """A fresh network of the config's kind."""
    config.validate()
    if config.kind == "token":
        from .fastweight import FastWeightNet
        return FastWeightNet(config)
    return Hypernet(config)


class Block(nn.Module):
    """Pre-norm transformer block; queries attend to `context` (self-attention when it is None)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, context_dim: int | None = None,
                 center_values: bool = False, sharpness: float = 1.0):
        super().__init__()
        self.heads = heads
        self.center_values = center_values
        self.sharpness = sharpness
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(context_dim, elementwise_affine=False) if context_dim else None
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def attend(self, x: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q(self.norm_q(x)) * self.sharpness
        ctx = self.norm_q(x) if context is None else self.norm_kv(context)
        k, v = self.kv(ctx).chunk(2, dim=-1)
        if self.center_values:
            if mask is None:
                v = v - v.mean(dim=1, keepdim=True)
            else:
                w = mask.reshape(b, -1, 1).to(v.dtype)  # [b, t, 1]: 1 for real tokens
                v = v - (v * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)
        split = lambda t: t.view(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))

    def forward(self, x, context=None, mask=None):
        x = x + self.attend(x, context, mask)
        return x + self.mlp(self.norm_mlp(x))


class Hypernet(HypernetBase):
    """The Perceiver kind."""

    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = c = config
        n_layers, n_mod = len(c.layers), len(c.target_modules)
        self.shapes = c.shapes()
        # one query per (layer, module, rank row), built from three learned parts
        self.row_emb = nn.Parameter(torch.randn(n_mod, c.rank, c.dim) * 0.02)
        self.layer_emb = nn.Parameter(torch.randn(n_layers, c.dim) * 0.02)
        self.source_emb = nn.Parameter(torch.zeros(n_layers, c.base_hidden_size))
        self.read = Block(c.dim, c.heads, c.mlp_ratio, context_dim=c.base_hidden_size, center_values=c.center_values,
                          sharpness=c.read_sharpness)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio) for _ in range(c.latent_blocks))
        self.norm_out = nn.LayerNorm(c.dim)
        self.head_a = nn.ModuleDict({m: nn.Linear(c.dim, d_in) for m, (d_in, _) in self.shapes.items()})
        self.head_b = nn.ModuleDict({m: nn.Linear(c.dim, d_out) for m, (_, d_out) in self.shapes.items()})
        # B heads start at zero: an untrained hypernetwork generates B = 0, an exact no-op adapter
        for head in self.head_b.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.gate = nn.Parameter(torch.ones(n_layers, n_mod))
        self.init_bias_block()

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-chunk factors.

        feats: [N, L, T, H] hidden states of N chunks at the L source layers; mask: [N, T] bool,
        True for real tokens. Returns {module path: (A [N, r, d_in], B [N, d_out, r])}.
        """
        c = self.config
        n, n_layers, t, h = feats.shape
        n_mod = len(c.target_modules)
        context = (feats.float() + self.source_emb[None, :, None, :]).reshape(n * n_layers, t, h)
        attn_mask = None
        if mask is not None:
            attn_mask = mask[:, None, :].expand(n, n_layers, t).reshape(n * n_layers, 1, 1, t)
        queries = (self.row_emb[None] + self.layer_emb[:, None, None]).reshape(1, n_layers, n_mod * c.rank, c.dim)
        x = queries.expand(n, -1, -1, -1).reshape(n * n_layers, n_mod * c.rank, c.dim)
        x = self.read(x, context, attn_mask)
        x = x.reshape(n, n_layers * n_mod * c.rank, c.dim)
        for block in self.blocks:
            x = block(x)
        x = self.norm_out(x).reshape(n, n_layers, n_mod, c.rank, c.dim)
        out = {}
        for j, m in enumerate(c.target_modules):
            d_in = self.shapes[m][0]
            a = self.head_a[m](x[:, :, j]) * d_in ** -0.5  # [N, L, r, d_in], rows of norm ~0.6 (as LoRA's A)
            b = self.head_b[m](x[:, :, j]) * self.gate[None, :, j, None, None]  # [N, L, r, d_out]
            for i, layer in enumerate(c.layers):
                out[module_path(layer, m)] = (a[:, i], b[:, i].transpose(1, 2))
        return out

    def is_noop(self) -> bool:
        """True when every generated B is zero whatever the document (an untrained network)."""
        heads = all(not p.any() for p in self.head_b.parameters()) or not self.gate.any()
        return bool(heads and self.bias_is_zero())

    @torch.no_grad()
    def open_(self, seed: int = 0) -> "Hypernet":
        """Give the B heads (and the always-on block) small random weights, in place.

        For tests and benchmarks that need adapters doing real work before any training: a fresh
        network is an exact no-op.
        """
        g = torch.Generator().manual_seed(seed)
        # per module, B big enough to matter against A's small (1/sqrt(d_in)) rows
        std = {m: 0.5 * (d_in / self.config.dim) ** 0.5 for m, (d_in, _) in self.shapes.items()}
        for m, head in self.head_b.items():
            for p in head.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * std[m])
        for m, p in getattr(self, "bias_b", {}).items():
            p.copy_(torch.randn(p.shape, generator=g) * std[m] / 2)
        self.gate.fill_(1.0)
        return self

    # ----------------------------------------------------------------------------- generation interface
    def read_chunks(self, enc, mask: torch.Tensor | None = None, write: torch.Tensor | None = None) -> list[dict]:
        if write is not None and mask is not None and not torch.equal(write, mask):
            raise ValueError("the Perceiver reads every token of a chunk: it takes no context-only tokens")
        factors = self(enc.hidden, mask)
        return [{k: (a[i], b[i]) for k, (a, b) in factors.items()} for i in range(enc.hidden.shape[0])]

    def fold(self, acc: dict | None, part: dict) -> dict:
        """Chunks concatenate along rank."""
        if acc is None:
            return part
        return {k: (torch.cat([acc[k][0], part[k][0]], 0), torch.cat([acc[k][1], part[k][1]], 1)) for k in part}

    def emit(self, part: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return self.fold(part, self.bias_factors()) if self.config.bias_rank else part

    def batch_factors(self, enc, mask: torch.Tensor, owner: list[int], n_docs: int) -> dict:
        """Each document's chunk factors (and the always-on block) concatenated along rank and
        zero-padded to the largest rank in the batch: A [D, R, d_in], B [D, d_out, R]."""
        per_chunk = self(enc.hidden, mask)
        bias = self.bias_factors()
        most = max(owner.count(d) for d in range(n_docs))
        out = {}
        for k, (a, b) in per_chunk.items():
            r = a.shape[1]
            rows_a, cols_b = [], []
            for d in range(n_docs):
                mine = [i for i, o in enumerate(owner) if o == d]
                pad = (most - len(mine)) * r
                rows_a.append(torch.cat([a[mine].flatten(0, 1), a.new_zeros(pad, a.shape[2])]
                                        + ([bias[k][0]] if bias else []), 0))
                cols_b.append(torch.cat([b[mine].transpose(0, 1).flatten(1), b.new_zeros(b.shape[1], pad)]
                                        + ([bias[k][1]] if bias else []), 1))
            out[k] = (torch.stack(rows_a), torch.stack(cols_b))
        return out


def checkpoint_fingerprint(folder: Path | str) -> str:
    """Content hash of a checkpoint: part of every adapter id, so a new checkpoint means new ids."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]
