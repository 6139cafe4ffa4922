"""`LoRAWeights`: the one adapter type used everywhere (generator, store, server, training).

Convention: for every target module (a dotted path such as `model.layers.3.mlp.down_proj`) the
update is `delta_W = B @ A` with `A: [r, d_in]`, `B: [d_out, r]`, and the scaling already folded
into B. Folding keeps concatenation trivial (chunks and documents just stack along rank) and makes
the PEFT export exact with `lora_alpha = r` (PEFT and vLLM both scale by `alpha / r` = 1).
In memory all modules share one rank. On disk a module whose last rank rows are zero in A and B
alike (the copy path's head block, padded to the adapter's rank) is written at its own smaller rank
through PEFT's `rank_pattern` and `alpha_pattern`, which PEFT and vLLM (0.32) both read; loading
pads it back.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import MissingModel, ModelMismatch
from .paths import atomic_folder

_PEFT_PREFIX = "base_model.model."
CONFIG_NAME = "adapter_config.json"
META_NAME = "vllm_d2l.json"  # our provenance (tokens, chunks, checkpoint), beside PEFT's own files
WEIGHTS_NAME = "adapter_model.safetensors"


def module_shapes(hf_config, modules: list[str]) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each Llama-style projection named by its short name (e.g. `down_proj`)."""
    h = hf_config.hidden_size
    inter = hf_config.intermediate_size
    head_dim = getattr(hf_config, "head_dim", None) or h // hf_config.num_attention_heads
    q = hf_config.num_attention_heads * head_dim
    kv = hf_config.num_key_value_heads * head_dim
    table = {
        "q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
        "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h),
    }
    unknown = [m for m in modules if m not in table]
    if unknown:
        raise ModelMismatch(f"unsupported target modules {unknown}; known: {sorted(table)}")
    return {m: table[m] for m in modules}


HEAD = "lm_head"  # the LM head's path: the token generator's copy path writes there (`HypernetConfig.pointer_rank`)


def module_path(layer: int, module: str) -> str:
    """Dotted path of a projection inside a Llama-style `*ForCausalLM`."""
    group = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"model.layers.{layer}.{group}.{module}"


def layer_of(path: str) -> int | None:
    """The decoder layer a module path sits in ("model.layers.17.mlp.down_proj" -> 17); None for
    one outside the layers (the LM head)."""
    found = re.search(r"layers\.(\d+)\.", path)
    return int(found.group(1)) if found else None


@dataclass
class LoRAWeights:
    """Low-rank factors for a set of modules of one base model.

    `base_model` is a free-form identifier (name or path) carried into the PEFT config.
    """

    a: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]
    base_model: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.a) != set(self.b):
            raise ValueError("A and B must name the same modules")
        if not self.a:
            raise ValueError("an adapter needs at least one module")
        ranks = {self.a[k].shape[0] for k in self.a} | {self.b[k].shape[1] for k in self.b}
        if len(ranks) != 1:
            raise ValueError(f"all modules must share one rank, got {sorted(ranks)}")

    # ----------------------------------------------------------------------------- properties
    @property
    def rank(self) -> int:
        return next(iter(self.a.values())).shape[0]

    @property
    def modules(self) -> list[str]:
        return sorted(self.a)

    @property
    def target_modules(self) -> list[str]:
        return sorted({k.rsplit(".", 1)[-1] for k in self.a})

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.a.values(), *self.b.values()))

    def delta(self, name: str) -> torch.Tensor:
        """Dense update of one module (for tests and small models only)."""
        return self.b[name].float() @ self.a[name].float()

    def to(self, dtype: torch.dtype | None = None, device=None) -> "LoRAWeights":
        cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return LoRAWeights({k: cast(v) for k, v in self.a.items()},
                           {k: cast(v) for k, v in self.b.items()}, self.base_model, dict(self.meta))

    # ----------------------------------------------------------------------------- algebra
    @staticmethod
    def check_addable(parts: list["LoRAWeights"], verb: str = "concatenate") -> None:
        """Raise unless `parts` (at least one) update the same modules of the same base model."""
        if not parts:
            raise ValueError(f"nothing to {verb}")
        first = parts[0]
        for p in parts[1:]:
            if set(p.a) != set(first.a):
                raise ModelMismatch(f"cannot {verb} adapters with different target modules")
            if p.base_model != first.base_model:
                raise ModelMismatch(f"cannot {verb} adapters of '{first.base_model}' and '{p.base_model}'")

    @staticmethod
    def concat(parts: list["LoRAWeights"]) -> "LoRAWeights":
        """Stack adapters along rank: the summed update of all parts, at rank sum(r_i)."""
        LoRAWeights.check_addable(parts)
        first = parts[0]
        a = {k: torch.cat([p.a[k] for p in parts], dim=0) for k in first.a}
        b = {k: torch.cat([p.b[k] for p in parts], dim=1) for k in first.b}
        return LoRAWeights(a, b, first.base_model, _without_layout(first.meta))

    def cap_rank(self, max_rank: int) -> "LoRAWeights":
        """Best rank-`max_rank` approximation of each module's update (truncated SVD).

        Computed from the factors: QR of B and of A^T reduce the problem to an r x r core, so the
        dense d_out x d_in matrix is never formed. Exact when `max_rank` >= the true rank.
        """
        if max_rank < 1:
            raise ValueError("max_rank must be >= 1")
        if self.rank <= max_rank:
            return self
        a_out, b_out = {}, {}
        for k in self.a:
            dtype = self.a[k].dtype
            A, B = self.a[k].double(), self.b[k].double()
            qb, rb = torch.linalg.qr(B)           # B = Qb Rb,  Qb: [d_out, r]
            qa, ra = torch.linalg.qr(A.T)         # A^T = Qa Ra, Qa: [d_in, r]
            u, s, vh = torch.linalg.svd(rb @ ra.T)  # core: [r, r]
            root = s[:max_rank].sqrt()
            b_out[k] = ((qb @ u[:, :max_rank]) * root).to(dtype)
            a_out[k] = (root[:, None] * (vh[:max_rank] @ qa.T)).to(dtype)
        return LoRAWeights(a_out, b_out, self.base_model, _without_layout(self.meta))

    # ----------------------------------------------------------------------------- checks
    def validate(self, hf_config) -> None:
        """Raise `ModelMismatch` naming every module whose shape the base model does not have."""
        problems = []
        n_layers = hf_config.num_hidden_layers
        for name in self.modules:
            if name == HEAD:  # the copy path: hidden -> vocabulary
                got, want = (self.a[name].shape[1], self.b[name].shape[0]), (hf_config.hidden_size, hf_config.vocab_size)
                if got != want:
                    problems.append(f"{name}: adapter is {got[0]}->{got[1]}, model is {want[0]}->{want[1]}")
                continue
            parts = name.split(".")
            try:
                layer, short = int(parts[2]), parts[-1]
                d_in, d_out = module_shapes(hf_config, [short])[short]
            except (IndexError, ValueError, ModelMismatch):
                problems.append(f"{name}: not a known projection of this model")
                continue
            if layer >= n_layers:
                problems.append(f"{name}: the model has only {n_layers} layers")
                continue
            got = (self.a[name].shape[1], self.b[name].shape[0])
            if got != (d_in, d_out):
                problems.append(f"{name}: adapter is {got[0]}->{got[1]}, model is {d_in}->{d_out}")
        if problems:
            raise ModelMismatch("adapter does not fit the base model: " + "; ".join(problems[:5])
                                + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))

    # ----------------------------------------------------------------------------- PEFT format
    def stored_ranks(self) -> dict[str, int]:
        """The modules written below the adapter's rank, and at what rank: their rank rows past it
        are zero in both factors. The head block of the copy path is [vocab, r] with only its first
        `pointer_rank` columns used; written whole it was most of a task adapter's bytes."""
        out = {}
        for k in self.a:
            used = (self.a[k].ne(0).any(1) | self.b[k].ne(0).any(0)).nonzero()  # [rank rows in use, 1]
            r = int(used.max()) + 1 if len(used) else 1
            if r < self.rank:
                out[k] = r
        return out

    def peft_config(self, ranks: dict[str, int] | None = None) -> dict:
        """PEFT's `adapter_config.json`; `ranks` is `stored_ranks()` where the caller has it already."""
        ranks = self.stored_ranks() if ranks is None else ranks
        trimmed = {re.escape(k): r for k, r in ranks.items()}
        return {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model,
            "r": self.rank,
            "lora_alpha": self.rank,  # scaling alpha/r = 1: it is folded into B
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": False,
            "use_rslora": False,
            "use_dora": False,
            "target_modules": self.target_modules,
            "inference_mode": True,
            **({"rank_pattern": trimmed, "alpha_pattern": dict(trimmed)} if trimmed else {}),  # scaling 1 there too
        }

    def peft_state_dict(self, ranks: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
        ranks = self.stored_ranks() if ranks is None else ranks
        out = {}
        for k in self.a:
            r = ranks.get(k, self.rank)
            out[f"{_PEFT_PREFIX}{k}.lora_A.weight"] = self.a[k][:r].contiguous()  # [r_k, d_in]
            out[f"{_PEFT_PREFIX}{k}.lora_B.weight"] = self.b[k][:, :r].contiguous()  # [d_out, r_k]
        return out

    def to_safetensors_bytes(self, ranks: dict[str, int] | None = None) -> bytes:
        """Weights as safetensors bytes with the PEFT config in the header metadata."""
        ranks = self.stored_ranks() if ranks is None else ranks
        return st_save(self.peft_state_dict(ranks), metadata={"peft_config": json.dumps(self.peft_config(ranks)),
                                                          "vllm_d2l": json.dumps(self.meta)})

    @classmethod
    def from_safetensors_bytes(cls, data: bytes) -> "LoRAWeights":
        header = _safetensors_metadata(data)
        config = json.loads(header.get("peft_config", "{}"))
        return cls._from_state_dict(st_load(data), config, json.loads(header.get("vllm_d2l", "{}")))

    def save_peft(self, folder: Path | str) -> Path:
        """Write a PEFT folder atomically (temp folder + rename), so readers never see half of one."""
        folder = Path(folder)
        with atomic_folder(folder) as tmp:
            ranks = self.stored_ranks()  # one scan of the factors for both files
            (tmp / WEIGHTS_NAME).write_bytes(self.to_safetensors_bytes(ranks))
            (tmp / CONFIG_NAME).write_text(json.dumps(self.peft_config(ranks), indent=2))
            (tmp / META_NAME).write_text(json.dumps(self.meta, indent=2))
        return folder

    @classmethod
    def load_peft(cls, folder: Path | str) -> "LoRAWeights":
        folder = Path(folder)
        cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not cfg_path.is_file() or not w_path.is_file():
            raise MissingModel(f"{folder} is not a PEFT adapter folder "
                               f"(needs {CONFIG_NAME} and {WEIGHTS_NAME})")
        config = json.loads(cfg_path.read_text())
        meta_path = folder / META_NAME
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls._from_state_dict(st_load(w_path.read_bytes()), config, meta)

    @classmethod
    def _from_state_dict(cls, sd: dict[str, torch.Tensor], config: dict, meta: dict) -> "LoRAWeights":
        a, b = {}, {}
        for key, t in sd.items():
            name = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
            if name.endswith(".lora_A.weight"):
                a[name[: -len(".lora_A.weight")]] = t
            elif name.endswith(".lora_B.weight"):
                b[name[: -len(".lora_B.weight")]] = t
        for k in list(b):  # fold each module's scaling into B (1 for ours; a foreign adapter's may differ)
            r_k = b[k].shape[1]  # its own rank, `rank_pattern`'s where it has one
            alpha = _pattern_value(config.get("alpha_pattern"), k, config.get("lora_alpha") or r_k)
            if alpha != r_k:
                b[k] = b[k] * (alpha / (r_k ** 0.5 if config.get("use_rslora") else r_k))
        width = max(t.shape[0] for t in a.values()) if a else 0
        for k in set(a) & set(b):  # modules written at a smaller rank: zero rows back up to the adapter's
            pad = width - a[k].shape[0]
            if pad and b[k].shape[1] == a[k].shape[0]:
                a[k] = torch.cat([a[k], a[k].new_zeros(pad, a[k].shape[1])])
                b[k] = torch.cat([b[k], b[k].new_zeros(b[k].shape[0], pad)], 1)
        return cls(a, b, config.get("base_model_name_or_path", ""), meta)


def _pattern_value(pattern: dict | None, module: str, default):
    """A PEFT `rank_pattern` / `alpha_pattern` entry for `module`, matched as PEFT and vLLM match
    them (the key, a regex, ends the module's dotted path); `default` where none does."""
    for key, value in (pattern or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _without_layout(meta: dict) -> dict:
    """Meta for factors whose rank rows were restacked or mixed: the generator's layout (see
    `vllm_d2l.compose`) no longer describes them."""
    return {k: v for k, v in meta.items() if k != "layout"}


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors blob, read from its JSON header without loading tensors."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]).get("__metadata__") or {}
