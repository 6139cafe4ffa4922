"""The token-level ("fast-weight") generator: every document token writes into a linear memory.

For each target layer l (module `down_proj`, which writes into the residual stream), from the frozen
pass over the document keep, per token t:
    m_t  the input of layer l's `down_proj` (what a LoRA on it sees at query time)   [d_in]
    h_t  the residual stream after layer l at the next token (or the same one), RMS-normalised [H]
Then, with G_l [k, d_in] learned and V_l [H, H] zero-initialised,
    key   a_t = G_l m~_t / sqrt(k)     (m~ = m / in_rms_l, keys centred over the document)
    query q   = G_l x~                 (x~ = x / in_rms_l, x the module's input at query time)
    value b_t = V_l h_t
so that a score a_t . q has unit scale between unrelated tokens at the start. (A 1/sqrt(k) on the
query too would shrink every score, and so the adapter's output per unit of V, sqrt(k) times;
Adam moves V by about the same amount per step whatever its gradient's scale, so V would learn
sqrt(k) times slower.) The adapter adds
    gain_l * sum_t b_t (a_t . q) / sqrt(n)
to `down_proj`'s output: a linear attention over the document's tokens, each key kept paired with
its value (nothing is pooled).

It is a LoRA of rank k whatever the document's length:
    A = G_l / in_rms_l                                  [k, d_in], the same for every document
    B = gain_l * V_l (sum_t h_t a_t^T) / sqrt(n)        [H, k]
and a document's chunks combine by summing their memories (sum_t h_t a_t^T, sum_t h_t, sum_t a_t, n):
centring and normalising happen once, on the sums. V starts at zero, so a fresh network is an
exact no-op; an always-on block (as in the Perceiver) is appended for what every document needs.

With `memory_read="ridge"` the memory also sums the keys' outer products (sum_t a_t a_t^T) and B
reads it through the keys' whitened covariance (see `HypernetConfig.memory_read`): still rank k,
still summed over chunks, but each stored key then answers more nearly with its own value.

With `own_write_keys` the keys come from G_l + D_l (D_l learned, zero at the start) while the
queries keep G_l, so the write side can move a token's key toward the questions that ask for it.

With `pooled_rank` r more rank rows follow the memory's: a learned A_p and a B mixed from learned
matrices by the document's mean value, for what a text asks of every reply rather than of one
question (the task mode's "reply in upper case").

With `value_embed` each value is [h_t ; e_t], e_t the stored token's input embedding (RMS-normalised),
read through [V_l, E_l] with E_l zero at the start: the memory holds 2H-wide values, still summed.

With `pointer_rank` k_p a copy path joins them, a LoRA on `lm_head` (see `HypernetConfig.pointer_rank`):
    key   a_t = P z~_t / sqrt(k_p)   (z~ = z / z_rms, z_t the final normed state at t, P [k_p, H] learned)
    query q   = P z~                 (z the head's input at query time)
    B_head    = gain_p sum_t e_{x_{t+1}} (g_t (a_t - mean a))^T      [vocab, k_p]
so a reply state that matches a stored state raises the logit of the token that followed it there,
and of no other token. With `pointer_embed` the keys have their own maps and read token t's
embedding too, a_t = ((P + P_own) z~_t + P_emb e~_t) / sqrt(k_p) (e~ RMS-normalised), the query
unchanged: a key then says which token it was stored at, not only what was expected next.
With `pointer_ahead` a key also reads the state at the stored token itself, a_t += P_ahead z~_{t+1}
/ sqrt(k_p): the state before a list's first mark cannot know a list begins there, the mark's own can.
With `pointer_variants` each pair is also added into the rows of token t+1's spelling variants
(`token_variants`: " x" -> "x", "Talk" -> " Talk", ")," -> ")"), by a learned weight per kind of
variant, so a label shown mid-sentence can open a line.
Its memory is that [vocab, k_p] sum (with the tokens' weighed counts and keys, for the centring);
documents and chunks still combine by adding.

With `write_gate` every token's terms (and its count in n) are weighed by g_t = 2 sigmoid(u . m~_t
+ c), read from the same input as its key: the memory becomes a weighted one, chunks still sum.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .hypernet import HypernetBase, HypernetConfig
from .lora import HEAD, module_path
from .token_variants import KINDS as VARIANT_KINDS, variant_table


def rms_normed(x: torch.Tensor) -> torch.Tensor:
    """x over its root mean square along the last dimension: values and embeddings at one scale
    whatever layer or token they come from."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class FastWeightNet(HypernetBase):
    keeps_memory = True  # a document's memory is its sums: fixed size, and documents fold by adding

    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = c = config
        self.shapes = c.shapes()
        n_layers, k = len(c.layers), c.key_dim
        self.paths = {m: [module_path(l, m) for l in c.layers] for m in c.target_modules}
        self.key = nn.ParameterDict({m: nn.Parameter(torch.randn(n_layers, k, d_in) / d_in ** 0.5)
                                     for m, (d_in, _) in self.shapes.items()})  # G
        self.value = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, h, h))
                                       for m, (_, h) in self.shapes.items()})  # V, zero: exact no-op
        self.gain = nn.Parameter(torch.ones(n_layers, len(c.target_modules)))
        if c.write_gate:  # u and c of g_t = 2 sigmoid(u . m~_t + c): zero, so every g starts at 1
            self.write = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, d_in))
                                           for m, (d_in, _) in self.shapes.items()})
            self.write_bias = nn.Parameter(torch.zeros(n_layers, len(c.target_modules)))
        if c.memory_read == "ridge":  # log e per layer: how far the read whitens the keys
            self.ridge = nn.Parameter(torch.full((n_layers, len(c.target_modules)), math.log(c.ridge_init)))
        # RMS of each module's inputs, measured once on real documents (`calibrate_`), so keys and
        # queries start at unit scale whatever the layer; 1 until then.
        self.register_buffer("in_rms", torch.ones(n_layers, len(c.target_modules)))
        self.init_bias_block()
        if c.own_write_keys:  # D of the document side's key map G + D: zero, the shared map
            # (registered last, so its optimizer group comes after those of a run without it)
            self.doc_key = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, k, d_in))
                                             for m, (d_in, _) in self.shapes.items()})
        if c.pooled_rank:  # A_p, the basis M and the mixing map W (zero: no block), likewise last
            r, nb = c.pooled_rank, c.pooled_basis
            self.pool_a = nn.ParameterDict({m: nn.Parameter(torch.randn(n_layers, r, d_in) / d_in ** 0.5)
                                            for m, (d_in, _) in self.shapes.items()})
            self.pool_basis = nn.ParameterDict({m: nn.Parameter(torch.randn(n_layers, nb, h, r) / h ** 0.5)
                                                for m, (_, h) in self.shapes.items()})
            self.pool_mix = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, nb, h))
                                              for m, (_, h) in self.shapes.items()})
        if c.value_embed:  # E, the map of the stored token's embedding: zero, likewise last
            self.embed_value = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_layers, h, h))
                                                 for m, (_, h) in self.shapes.items()})
        if c.pointer_rank:  # the copy path: P, its write gate (u, c: every g 1) and its gain (zero: none)
            hidden = c.base_hidden_size
            self.pointer_key = nn.Parameter(torch.randn(c.pointer_rank, hidden) / hidden ** 0.5)
            self.pointer_write = nn.Parameter(torch.zeros(hidden))
            self.pointer_write_bias = nn.Parameter(torch.zeros(()))
            self.pointer_gain = nn.Parameter(torch.zeros(()))
            # RMS of the head's inputs, measured on the first text training reads (0: not yet, and 1 is
            # used), so a path switched on in a trained run needs no calibration pass
            self.register_buffer("pointer_rms", torch.zeros(()))
            if c.pointer_embed:  # the keys' own maps, of the final state and of the token's embedding: zero
                self.pointer_key_own = nn.Parameter(torch.zeros(c.pointer_rank, hidden))
                self.pointer_key_embed = nn.Parameter(torch.zeros(c.pointer_rank, hidden))
            if c.pointer_ahead:  # the map of the state one place ahead, at the stored token: zero
                self.pointer_key_ahead = nn.Parameter(torch.zeros(c.pointer_rank, hidden))
            if c.pointer_variants:  # each kind of spelling variant's weight (zero: none) and the variants'
                # ids, which come from the tokenizer (`bind_tokenizer`), not the checkpoint: -1 until bound
                self.pointer_variant_gain = nn.Parameter(torch.zeros(len(VARIANT_KINDS)))
                self.register_buffer("pointer_variant_ids", torch.full((c.base_vocab_size, len(VARIANT_KINDS)), -1),
                                     persistent=False)
                self.variants_bound = False

    @property
    def capture(self) -> list[str]:
        return [p for m in self.config.target_modules for p in self.paths[m]]

    def bind_tokenizer(self, tokenizer) -> None:
        if self.config.pointer_variants:
            table = variant_table(tokenizer, self.config.base_vocab_size)
            self.pointer_variant_ids.copy_(table.to(self.pointer_variant_ids.device))
            self.variants_bound = True

    @torch.no_grad()
    def calibrate_(self, enc, mask: torch.Tensor) -> None:
        x = enc.inputs.float()  # [N, M*L, T, d_in], module-major as in `capture`
        w = mask[:, None, :, None].to(x.dtype)
        ms = (x.pow(2) * w).sum((0, 2, 3)) / (w.sum() * x.shape[-1])  # [M*L]
        self.in_rms.copy_(ms.sqrt().clamp_min(1e-6).view(len(self.config.target_modules), -1).T)

    # ----------------------------------------------------------------------------- memory
    def memory(self, enc, mask: torch.Tensor, write: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-chunk sums, batched: S [N, M, L, H, k], sh [N, M, L, H], sk [N, M, L, k], n [N]
        (and, for the ridge read, kk [N, M, L, k, k]; with the write gate, nw [N, M, L], the
        weighed count that takes n's place in the read). `write` [N, T] (default: `mask`) marks the
        tokens stored; the others are context only (`HypernetConfig.chunk_overlap`): a pair is
        stored when its value's token is written, so each pair of the document is stored once."""
        c = self.config
        n_mod, n_layers = len(c.target_modules), len(c.layers)
        m_in = enc.inputs.float().unflatten(1, (n_mod, n_layers))  # [N, M, L, T, d_in]
        h = enc.hidden.float()  # [N, L(+1), T, H]
        w = mask.float() if write is None else (mask & write).float()  # [N, T]
        if c.value_from == "next":  # key at t, value at t+1
            m_in, h, w = m_in[..., :-1, :], h[:, :, 1:], mask[:, :-1].float() * w[:, 1:]
        h = self.values_from(h)  # [N, L, T, H (2H with the embeddings)]
        out = {"S": [], "sh": [], "sk": []} | ({"kk": []} if c.memory_read == "ridge" else {}) \
            | ({"nw": []} if c.write_gate else {})
        for j, m in enumerate(c.target_modules):
            wt = w[:, None, :].expand(-1, n_layers, -1)  # [N, L, T], padding and unpaired tokens weigh 0
            if c.write_gate:
                u = self.write[m] / self.in_rms[:, j, None]  # [L, d_in]
                logit = torch.einsum("nltd,ld->nlt", m_in[:, j], u) + self.write_bias[None, :, j, None]
                wt = wt * 2 * torch.sigmoid(logit)  # [N, L, T]
            hw = h * wt[..., None]  # [N, L, T, H]
            g = self.write_keys(m) / (self.in_rms[:, j, None, None] * c.key_dim ** 0.5)  # [L, k, d_in]
            keys = torch.einsum("nltd,lkd->nltk", m_in[:, j], g)  # [N, L, T, k]
            out["S"].append(torch.einsum("nlth,nltk->nlhk", hw, keys))  # [N, L, H, k]
            out["sh"].append(hw.sum(2))  # [N, L, H]
            out["sk"].append((keys * wt[..., None]).sum(2))  # [N, L, k]
            if "nw" in out:
                out["nw"].append(wt.sum(2))  # [N, L]: the weighed token count of each layer's memory
            if "kk" in out:
                out["kk"].append(torch.einsum("nltk,nltj->nlkj", keys * wt[..., None], keys))  # [N, L, k, k]
        mem = {k: torch.stack(v, 1) for k, v in out.items()}
        mem["n"] = w.sum(1)  # [N]: tokens stored (the adapter's meta counts these)
        if c.pointer_rank:
            mem |= self.pointer_memory(enc, mask, write)
        return mem

    def pointer_memory(self, enc, mask: torch.Tensor, write: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The copy path's sums over the stored pairs (key at t, the token at t+1): P [N, V, k_p]
        (each key added into its next token's row), pc [N, V] and pk [N, k_p] (the weighed counts
        and keys, which centre the read)."""
        c = self.config
        if enc.ids is None:
            raise ValueError("the copy path needs the tokens read (`Encoded.ids`)")
        z = enc.hidden[:, c.pointer_source].float()  # [N, T, H]: what the LM head sees
        w = mask.float() if write is None else (mask & write).float()
        ahead = z[:, 1:]  # [N, T-1, H]: the state at the stored token itself
        z, nxt, w = z[:, :-1], enc.ids[:, 1:], mask[:, :-1].float() * w[:, 1:]  # pairs (t, t+1) [N, T-1]
        if self.training and not self.pointer_rms:  # never while serving: every replica reads alike
            with torch.no_grad():
                self.pointer_rms.copy_((z.pow(2).mean(-1) * w).sum().div(w.sum().clamp_min(1)).sqrt().clamp_min(1e-6))
        z = z / self.head_rms()
        w = w * 2 * torch.sigmoid(z @ self.pointer_write + self.pointer_write_bias)  # [N, T-1]
        keys = z @ self.pointer_key.T  # [N, T-1, k_p]
        if c.pointer_embed:  # the embeddings sit last among the encoder's states
            e = enc.hidden[:, -1, :-1].float()  # [N, T-1, H]: token t itself
            e = rms_normed(e)
            keys = keys + z @ self.pointer_key_own.T + e @ self.pointer_key_embed.T
        if c.pointer_ahead:
            keys = keys + (ahead / self.head_rms()) @ self.pointer_key_ahead.T
        keys = keys * (w / c.pointer_rank ** 0.5)[..., None]  # weighed
        n, t = nxt.shape
        vocab = c.base_vocab_size
        offset = torch.arange(n, device=nxt.device)[:, None] * vocab  # [N, 1]: each document's rows
        rows = (nxt + offset).reshape(-1)  # [N*(T-1)]
        p = keys.new_zeros(n * vocab, c.pointer_rank).index_add(0, rows, keys.reshape(n * t, -1))
        pc = w.new_zeros(n * vocab).index_add(0, rows, w.reshape(-1))
        pk = keys.sum(1)
        if c.pointer_variants:  # each pair again, into its token's variants' rows, by each kind's weight
            if not self.variants_bound:
                raise RuntimeError("this copy path raises spelling variants, which come from the base model's "
                                   "tokenizer: call bind_tokenizer(tokenizer) first")
            var = self.pointer_variant_ids[nxt]  # [N, T-1, K]
            lam = self.pointer_variant_gain * (var >= 0)  # [N, T-1, K]: 0 where a token has no such variant
            vrows = (var.clamp_min(0) + offset[..., None]).reshape(-1)  # [N*(T-1)*K]
            vkeys = keys[..., None, :] * lam[..., None]  # [N, T-1, K, k_p]
            p = p.index_add(0, vrows, vkeys.reshape(vrows.numel(), -1))
            pc = pc.index_add(0, vrows, (w[..., None] * lam).reshape(-1))
            pk = pk + vkeys.sum((1, 2))
        return {"P": p.view(n, vocab, -1), "pc": pc.view(n, vocab), "pk": pk}

    def pointer_factors(self, mem: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The copy path's LoRA on the head from D summed memories: A [k_p, H], B [D, V, k_p]."""
        n = mem["pc"].sum(1).clamp_min(1.0)  # [D]: the weighed pairs stored
        b = mem["P"] - mem["pc"][..., None] * (mem["pk"] / n[:, None])[:, None, :]  # centred keys
        return self.pointer_key / self.head_rms(), b * self.pointer_gain

    def head_rms(self) -> torch.Tensor:
        """The scale of the head's inputs: measured by training, 1 for a network that never trained the path."""
        return torch.where(self.pointer_rms > 0, self.pointer_rms, torch.ones_like(self.pointer_rms))

    def values_from(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder states [N, L(+2), T, H] (the target layers' first, the embeddings last, with
        `value_embed`) -> each layer's RMS-normalised values [N, L, T, H], or [h ; e] [N, L, T, 2H]
        with the embeddings."""
        n_layers = len(self.config.layers)
        keep = torch.cat([hidden[:, :n_layers], hidden[:, -1:]], 1) if self.config.value_embed else hidden[:, :n_layers]
        h = rms_normed(keep)
        if not self.config.value_embed:
            return h
        return torch.cat([h[:, :n_layers], h[:, n_layers:].expand(-1, n_layers, -1, -1)], -1)

    def value_map(self, m: str) -> torch.Tensor:
        """Module m's map from a stored value to its adapter output: V [L, H, H], or [V, E] [L, H, 2H]."""
        return torch.cat([self.value[m], self.embed_value[m]], -1) if self.config.value_embed else self.value[m]

    def write_keys(self, m: str) -> torch.Tensor:
        """The document side's key map of module m [L, k, d_in]: the query map G, plus D if it has its own."""
        return self.key[m] + self.doc_key[m] if self.config.own_write_keys else self.key[m]

    def read_map(self, mem: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed memories of D documents -> the map from a key to its read value, before V and
        the gain [D, M, L, H, k] (centred, whitened for the ridge read), and the token counts
        [D, M, L, 1, 1] (weighed by the gate if any)."""
        c = self.config
        s = mem["S"]  # [D, M, L, H, k]
        n = mem["nw"] if "nw" in mem else mem["n"][:, None, None].expand(s.shape[:3])  # [D, M, L]
        n = n.clamp_min(1.0)[..., None, None]  # [D, M, L, 1, 1]
        if c.center_keys:  # sum_t h_t (a_t - mean a)^T = S - (sum h)(sum a)^T / n
            s = s - mem["sh"][..., :, None] * mem["sk"][..., None, :] / n
        if c.memory_read == "ridge":
            s = self.whiten(s, mem, n)
        return s, n

    def factors(self, mem: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Summed memories of D documents -> {path: (A [D, k, d_in], B [D, H, k])}."""
        c = self.config
        s, n = self.read_map(mem)
        scale = {"sqrt": n.rsqrt(), "mean": 1.0 / n, "none": torch.ones_like(n)}[c.memory_norm]  # [D, M, L, 1, 1]
        out = {}
        for j, m in enumerate(c.target_modules):
            a = self.key[m] / self.in_rms[:, j, None, None]  # [L, k, d_in]: the query map
            b = torch.einsum("lgh,dlhk->dlgk", self.value_map(m), s[:, j])  # [D, L, H, k]
            b = b * (self.gain[None, :, j, None, None] * scale[:, j])
            if c.pooled_rank:
                h_bar = mem["sh"][:, j, ..., :self.shapes[m][1]] / n[:, j, ..., 0]  # [D, L, H]: streams only
                pa, pb = self.pooled(m, h_bar)  # [L, r, d_in], [D, L, H, r]
                a, b = torch.cat([a, pa], 1), torch.cat([b, pb], -1)
            for i, path in enumerate(self.paths[m]):
                out[path] = (a[i].expand(b.shape[0], -1, -1), b[:, i])
        if c.pointer_rank:
            a, b = self.pointer_factors(mem)
            out[HEAD] = (a.expand(b.shape[0], -1, -1), b)
        return out

    def pooled(self, m: str, h_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled block of module m from the documents' mean values h_bar [D, L, H]:
        A_p [L, r, d_in] and B_p = sum_i c_i M_i [D, L, H, r] with c = W h_bar [D, L, basis]."""
        j = self.config.target_modules.index(m)
        mix = torch.einsum("lbh,dlh->dlb", self.pool_mix[m], h_bar)
        b = torch.einsum("dlb,lbhr->dlhr", mix, self.pool_basis[m])
        return self.pool_a[m] / self.in_rms[:, j, None, None], b

    def whiten(self, s: torch.Tensor, mem: dict[str, torch.Tensor], n: torch.Tensor) -> torch.Tensor:
        """S ((1 + e) t (C + e t I)^-1): C the keys' covariance [D, M, L, k, k], t = trace(C) / k;
        n [D, M, L, 1, 1] the token counts."""
        k = self.config.key_dim
        cov = mem["kk"]
        if self.config.center_keys:
            cov = cov - mem["sk"][..., :, None] * mem["sk"][..., None, :] / n
        cov = cov / n
        t = cov.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-8) / k  # [D, M, L]
        e = self.ridge.T.exp()[None]  # [1, M, L]
        eye = torch.eye(k, dtype=cov.dtype, device=cov.device)
        ridge = cov + (e * t)[..., None, None] * eye  # [D, M, L, k, k], symmetric positive definite
        solved = torch.linalg.solve(ridge, s.transpose(-1, -2)).transpose(-1, -2)  # S R^-1 [D, M, L, H, k]
        return solved * ((1 + e) * t)[..., None, None]

    # ----------------------------------------------------------------------------- generation interface
    def read_chunks(self, enc, mask: torch.Tensor, write: torch.Tensor | None = None) -> list[dict]:
        mem = self.memory(enc, mask, write)
        return [{k: v[i] for k, v in mem.items()} for i in range(mask.shape[0])]

    def fold(self, acc: dict | None, part: dict) -> dict:
        """Chunks combine by summing their memories."""
        return part if acc is None else {k: acc[k] + part[k] for k in part}

    def emit(self, part: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        one = {k: v[None] for k, v in part.items()}
        out = self._with_bias({k: (a[0], b[0]) for k, (a, b) in self.factors(one).items()}, batched=False)
        if HEAD in out:  # in memory every module has the adapter's rank: the head's pads with zeros
            # (which the PEFT folder leaves out, `LoRAWeights.stored_ranks`)
            a, b = out[HEAD]
            pad = self.config.adapter_rank() - a.shape[0]
            out[HEAD] = (torch.cat([a, a.new_zeros(pad, a.shape[1])]), torch.cat([b, b.new_zeros(b.shape[0], pad)], 1))
        return out

    def batch_factors(self, enc, mask: torch.Tensor, owner: list[int], n_docs: int) -> dict:
        mem = self.memory(enc, mask)
        index = torch.tensor(owner, device=mask.device)
        summed = {k: v.new_zeros((n_docs, *v.shape[1:])).index_add(0, index, v) for k, v in mem.items()}
        return self.read_documents(summed)

    def document_factors(self, parts: list[tuple]) -> dict:
        """Each document's memory from its own chunks (`(enc, mask)`, or `(enc, mask, write)` where
        some tokens are context only), summed over them, then all read at once.
        The sums cost in proportion to the slots they run over, padding included, and a batch
        that pads a 100-token document's chunks to another's 1,000-token chunk spends most of
        its time on zeros."""
        mems = [self.memory(*part) for part in parts]  # each {name: [n_i, ...]}
        return self.read_documents({k: torch.stack([m[k].sum(0) for m in mems]) for k in mems[0]})  # [D, ...]

    def read_documents(self, summed: dict[str, torch.Tensor]) -> dict:
        """D documents' summed memories [D, ...] -> their factors with the always-on block."""
        return self._with_bias(self.factors(summed), batched=True)

    def _with_bias(self, factors: dict, batched: bool) -> dict:
        bias = self.bias_factors()
        if not bias:
            return factors
        out = {}
        for k, (a, b) in factors.items():
            if k not in bias:  # the copy path has no always-on block
                out[k] = (a, b)
                continue
            ba, bb = bias[k]
            if batched:
                bb = bb.expand(b.shape[0], -1, -1)
                if a.stride(0) == 0:  # the query map is every document's: joined once, its rows views
                    out[k] = (torch.cat([a[0], ba], -2).expand(a.shape[0], -1, -1), torch.cat([b, bb], -1))
                    continue
                ba = ba.expand(a.shape[0], -1, -1)
            out[k] = (torch.cat([a, ba], -2), torch.cat([b, bb], -1))
        return out

    def layout(self, part: dict) -> dict:
        """Every adapter of this network shares its content A (the query map), so documents compose
        by summing their memories: B_content = gain V (sum of the S_i) / norm(sum of the n_i).
        A whitened read cannot be pooled from the adapters (it would need each document's key
        covariance); its documents compose as the sum of their own updates, which with the
        shared A is the sum of their B blocks (norm "none"), still at rank k."""
        if self.config.memory_read == "ridge":
            return {"combine": "sum", "always_on": self.config.bias_rank, "norm": "none", "tokens": float(part["n"])}
        return {"combine": "sum", "always_on": self.config.bias_rank, "norm": self.config.memory_norm,
                "tokens": float(part["n"])}

    # ----------------------------------------------------------------------------- inspection
    def is_noop(self) -> bool:
        maps = [*self.value.values(), *getattr(self, "embed_value", {}).values()]
        values = all(not v.any() for v in maps) or not self.gain.any()
        pooled = all(not w.any() for w in getattr(self, "pool_mix", {}).values())
        pointer = not self.config.pointer_rank or not self.pointer_gain.any()
        return bool(values and pooled and pointer and self.bias_is_zero())

    @torch.no_grad()
    def open_(self, seed: int = 0) -> "FastWeightNet":
        """Small random values (and always-on block), in place: adapters that do real work untrained."""
        g = torch.Generator().manual_seed(seed)
        for v in [*self.value.values(), *getattr(self, "embed_value", {}).values()]:
            v.copy_(torch.randn(v.shape, generator=g) / v.shape[-1] ** 0.5)
        for m, p in getattr(self, "bias_b", {}).items():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for p in getattr(self, "write", {}).values():  # gates that differ from token to token
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        for p in getattr(self, "doc_key", {}).values():  # keys that differ from the queries
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        for p in getattr(self, "pool_mix", {}).values():  # a pooled block that depends on the document
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        self.gain.fill_(1.0)
        if self.config.pointer_rank:
            self.pointer_gain.fill_(1.0)
        return self
