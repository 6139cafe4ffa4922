"""Losses over a batch of examples, each example scored with its own document's adapter.

Context distillation: the teacher is the base model with the document in its prompt, the student
is the same model with the adapter and no document; on the answer positions the student matches
the teacher's top-k distribution (renormalised over those k tokens, or with one bucket more for
all other tokens: `topk_kl`), plus a cross-entropy on the
gold answer because a 135M teacher is often wrong.
Reconstruction (pretraining, needs no questions): the student with the adapter must reproduce the
start of the chunk it was generated from, given only a fixed instruction.
Edits (task mode): the targets are the base model's own replies rewritten to follow a rule, so
most of their tokens are what the base model says anyway. Cross-entropy on those teaches the
always-on block to recite the training replies, not to follow the rule; so the teacher is the
base model itself (no text in the prompt) on the target, cross-entropy is taken only where the
target departs from the base model's first choice (the edit), and elsewhere the student matches
the base model's distribution (KL), which recitation cannot lower.
Logits are computed at answer positions only: the 49k-wide LM head is a fifth of the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from ..apply import lora_applied
from ..lora import HEAD, layer_of
from ..prompts import context_messages, described_messages, question_messages, render

RECONSTRUCT_PROMPT = "Repeat the document you have memorised, word for word."


@dataclass
class Example:
    """One (prompt, answer) pair, tokenized; `doc` indexes the adapter it is scored with."""

    prompt: list[int]
    answer: list[int]
    doc: int = 0
    teacher: tuple[torch.Tensor, torch.Tensor] | None = None  # top-k ids, log-probs per answer token
    # the bare base model's first choice per answer token, where the teacher is not the bare base
    # model itself (`guided_topk`): the edits objective's edits are departures from it
    first: torch.Tensor | None = None
    reconstruct: bool = False
    weight: float = 1.0  # of its answer tokens in the batch's cross-entropy (a weighted mean)
    # the bare base model's residual stream over prompt + answer [L, H] below the first adapted
    # layer, kept from the teacher's pass over the very same tokens (`_answer_logprobs`): the
    # student then runs only the layers an adapter can change (`student_logits`)
    lower: torch.Tensor | None = None


def pad_batch(examples: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and a mask of positions whose *next* token is an answer token."""
    width = max(len(e.prompt) + len(e.answer) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    target = torch.zeros_like(ids, dtype=torch.bool)
    for i, e in enumerate(examples):
        seq = e.prompt + e.answer
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        target[i, len(e.prompt) - 1:len(seq) - 1] = True
    return ids, attn, target


def answer_ids(tokenizer, answer: str, lead_space: bool = False) -> list[int]:
    """The answer's tokens and the end of turn. `lead_space`: tokenized as it stands inside a
    sentence (" Quill" -> " Qu", "ill"), which is how a document holds it, rather than as the first
    word of a reply ("Quill" -> "Qu", "ill"), so a copy from the document needs no respelling."""
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    text = (" " if lead_space else "") + answer.strip()
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [end]


def qa_examples(tokenizer, qa: list[dict], doc: int, lead_space: bool = False) -> list[Example]:
    return [Example(render(tokenizer, question_messages(x["q"])), answer_ids(tokenizer, x["a"], lead_space), doc)
            for x in qa]


def reconstruct_example(tokenizer, chunk_ids: list[int], n_tokens: int, doc: int) -> Example:
    return Example(render(tokenizer, question_messages(RECONSTRUCT_PROMPT)), list(chunk_ids[:n_tokens]), doc,
                   reconstruct=True)


def target_logits(model, ids: torch.Tensor, attn: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Logits only where the next token is scored: [P, V] in row-major order of `target`."""
    hidden = model.model(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state
    return model.lm_head(hidden[target]).float()


def _teacher_prompt(tokenizer, document: str | None, question: str) -> list[int]:
    """The document then the question; with no document, the bare question (the base model as
    its own teacher, the edits objective)."""
    return render(tokenizer, question_messages(question) if document is None else context_messages(document, question))


def _answer_logprobs(model, prompts: list[list[int]], answers: list[list[int]],
                     bucket: int | None = None, keep_below: int = 0) -> tuple[list[torch.Tensor], list | None]:
    """The model's full log-probabilities at each answer position, per question ([T_i, V] each),
    and with `keep_below` > 0 the residual stream entering layer `keep_below` over each whole
    prompt + answer ([L_i, H] each; else None).

    All questions share the document prefix of the prompt, so it is encoded once and its KV
    cache is repeated for the questions: the cost is one document plus the questions, not one
    document per question. The rest runs in passes of `bucket` questions of similar length (all in
    one pass when None): padded to the longest of a batch's replies, one pass took a CPU 2.4 times
    as long as passes of four (48 s against 20 s for 16 descriptions' 64 replies).
    """
    shared = _common_prefix(prompts)
    device = model.device
    seen: list[torch.Tensor] = []
    hook = (model.model.layers[keep_below - 1].register_forward_hook(lambda m, i, o: seen.append(o))
            if keep_below > 0 else None)
    try:
        cache = model.model(input_ids=torch.tensor([prompts[0][:shared]], device=device),
                            use_cache=True).past_key_values
        out: list[torch.Tensor] = [None] * len(prompts)  # type: ignore[list-item]
        states: list[torch.Tensor] = [None] * len(prompts)  # type: ignore[list-item]
        tails = [Example(p[shared:], a) for p, a in zip(prompts, answers)]
        for group in _buckets([len(t.prompt) + len(t.answer) for t in tails], bucket or len(tails)):
            ids, attn, target = (t.to(device) for t in pad_batch([tails[i] for i in group], 0))
            attn = torch.cat([attn.new_ones(len(group), shared), attn], dim=1)
            rows = DynamicCache([(layer.keys.expand(len(group), -1, -1, -1), layer.values.expand(len(group), -1, -1, -1))
                                 for layer in cache.layers])  # the prefix's keys and values, shared, not copied
            hidden = model.model(input_ids=ids, attention_mask=attn, past_key_values=rows, use_cache=True).last_hidden_state
            lp = F.log_softmax(model.lm_head(hidden[target]).float(), dim=-1)
            for j, (i, part) in enumerate(zip(group, lp.split(target.sum(1).tolist()))):
                out[i] = part
                if hook is not None:  # seen: [prefix [1, S, H], this pass [G, T, H]]
                    n = len(tails[i].prompt) + len(tails[i].answer)
                    states[i] = torch.cat([seen[0][0], seen[-1][j, :n]])  # [S + n, H]
            del seen[1:]
    finally:
        if hook is not None:
            hook.remove()
    return out, (states if hook is not None else None)


@torch.no_grad()
def teacher_topk(model, tokenizer, document: str | None, qa: list[dict], k: int,
                 bucket: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Teacher's top-k (token ids, log-probs) at each answer position, per question; `bucket`
    questions a pass (`_answer_logprobs`)."""
    return teacher_topk_and_states(model, tokenizer, document, qa, k, bucket)[0]


@torch.no_grad()
def teacher_topk_and_states(model, tokenizer, document: str | None, qa: list[dict], k: int,
                            bucket: int | None = None, keep_below: int = 0
                            ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list | None]:
    """`teacher_topk`, and with `keep_below` > 0 the residual stream entering that layer over each
    question's prompt + answer (`Example.lower`). With no document in the prompt the teacher reads
    exactly the student's tokens, and below the first adapted layer the student computes what the
    teacher did: kept, the student skips those layers (a CPU step of 16 task descriptions ran its
    student forward through 15 of 30 layers instead of all of them)."""
    prompts = [_teacher_prompt(tokenizer, document, x["q"]) for x in qa]
    answers = [answer_ids(tokenizer, x["a"]) for x in qa]
    out = []
    lps, states = _answer_logprobs(model, prompts, answers, bucket, keep_below)
    for lp in lps:
        vals, idx = lp.topk(k, dim=-1)
        out.append((idx.cpu(), vals.cpu()))
    return out, states


@torch.no_grad()
def guided_topk(model, tokenizer, description: str, qa: list[dict], k: int,
                guidance: float, bucket: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The task teacher moved toward the description: at each answer position the base model's
    log-probabilities on the bare question, moved `guidance` times as far as putting the
    description before the question moves them (renormalised; 0 is the bare model, 1 the described
    one). Top-k (ids, log-probs) and the bare model's first choice, per question.

    Why: the built targets teach each training family's rule only at its edits, and elsewhere the
    student was held to the bare model, so nothing carried what the base model itself makes of a
    description it was never trained on (a held-out family). The described model follows few
    descriptions (about a fifth of replies), so its shift is moved further than it goes.
    """
    answers = [answer_ids(tokenizer, x["a"]) for x in qa]
    bare = _answer_logprobs(model, [render(tokenizer, question_messages(x["q"])) for x in qa], answers, bucket)[0]
    told = _answer_logprobs(model, [render(tokenizer, described_messages(description, x["q"])) for x in qa], answers,
                            bucket)[0]
    out = []
    for b, d in zip(bare, told):
        vals, idx = F.log_softmax(b + guidance * (d - b), dim=-1).topk(k, dim=-1)
        out.append((idx.cpu(), vals.cpu(), b.argmax(-1).cpu()))
    return out


def teacher_topk_uncached(model, tokenizer, document: str | None, qa: list[dict], k: int):
    """The same as `teacher_topk` without prefix sharing (the reference it is tested against)."""
    examples = [Example(_teacher_prompt(tokenizer, document, x["q"]), answer_ids(tokenizer, x["a"])) for x in qa]
    ids, attn, target = pad_batch(examples, tokenizer.pad_token_id or 0)
    with torch.no_grad():
        lp = F.log_softmax(target_logits(model, ids, attn, target), dim=-1)
    vals, idx = lp.topk(k, dim=-1)
    sizes = target.sum(1).tolist()
    return list(zip(idx.split(sizes), vals.split(sizes)))


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the prefix every prompt shares, leaving at least one prompt token of each."""
    shared = min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        shared = next((i for i in range(shared) if p[i] != prompts[0][i]), shared)
    return max(shared, 0)


def _buckets(lengths: list[int], most: int) -> list[list[int]]:
    """Indices grouped by similar length (at most `most` per group), so little is spent on padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + most] for i in range(0, len(order), most)]


def first_adapted_layer(factors: dict) -> int:
    """The lowest decoder layer any factor's module sits in ("model.layers.15.mlp.down_proj" -> 15;
    the LM head sits after them all)."""
    return min((n for path in factors if (n := layer_of(path)) is not None), default=10 ** 9)


def student_logits(model, pad_id: int, examples: list[Example], factors: dict,
                   bucket: int = 4, deltas: list | None = None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The student's logits at every answer position: (logits [P, V], labels [P], answer lengths),
    rows in the order of `examples`. With `deltas` (an empty list), one tensor [P] is appended to
    it: at each of those positions, the squared size of the updates the adapter adds to the
    residual stream, summed over its modules (the LM head's update excepted).

    The chat prompt starts with the same system and user header for every question (about 30 of
    ~50 tokens), and the adapter makes that header's states depend on the document only; so it
    runs once per document and its KV cache is shared by the document's questions. The rest runs
    in length buckets, so short questions are not padded to the longest one. Where every example
    carries the base model's states below the first adapted layer (`Example.lower`), only the
    layers from there on run.
    """
    device = model.device
    n_docs = next(iter(factors.values()))[1].shape[0]
    # An A that is one matrix for every document (a view with a zero batch stride, as the
    # fast-weight generator's) is taken once: picked apart per pass, its gradient went through a
    # zero-filled [D, r, d_in] per pass and layer (4 s of a CPU step of 16 descriptions).
    factors = {k: (a[0] if a.dim() == 3 and a.stride(0) == 0 else a, b) for k, (a, b) in factors.items()}
    head = factors.pop(HEAD, None)  # the copy path: added to the logits below, on the answer rows only
    shared = _common_prefix([e.prompt for e in examples])
    start = first_adapted_layer(factors)
    upper = (start > 0 and all(e.lower is not None for e in examples)
             and model.config._attn_implementation in ("sdpa", "eager"))  # they take a 4D additive mask
    cache = None
    if shared:
        with lora_applied(model, factors):
            if upper:
                cache = DynamicCache(config=model.config)
                prefix = examples[0].lower[:shared].to(device).expand(n_docs, -1, -1)  # [D, S, H]
                _upper_layers(model, start, prefix, torch.arange(shared, device=device)[None], cache=cache)
            else:
                prefix = torch.tensor([examples[0].prompt[:shared]] * n_docs, device=device)
                cache = model.model(input_ids=prefix, use_cache=True).past_key_values
    per_example: list[tuple[torch.Tensor, torch.Tensor]] = [None] * len(examples)  # type: ignore[list-item]
    squared_of: list[torch.Tensor] = [None] * len(examples)  # type: ignore[list-item]
    for group in _buckets([len(e.prompt) + len(e.answer) for e in examples], bucket):
        tails = [Example(examples[i].prompt[shared:], examples[i].answer) for i in group]
        ids, attn, target = (t.to(device) for t in pad_batch(tails, pad_id))
        doc = torch.tensor([examples[i].doc for i in group], device=device)
        mine = {k: (a if a.dim() == 2 else a.index_select(0, doc), b.index_select(0, doc))
                for k, (a, b) in factors.items()}
        rows = None
        if cache is not None:
            ref = cache.layers[start if upper else 0].keys
            empty = ref.new_zeros(len(group), ref.shape[1], 0, ref.shape[3])  # layers that do not run
            rows = DynamicCache([(empty, empty) if upper and n < start else
                                 (layer.keys.index_select(0, doc), layer.values.index_select(0, doc))
                                 for n, layer in enumerate(cache.layers)])
        added: list[torch.Tensor] | None = [] if deltas is not None else None
        with lora_applied(model, mine, record=added):
            if upper:
                lower = ids.new_zeros(ids.shape + (model.config.hidden_size,), dtype=model.dtype)  # [G, T, H]
                for j, i in enumerate(group):
                    lower[j, :len(tails[j].prompt) + len(tails[j].answer)] = examples[i].lower[shared:]
                hidden = _upper_layers(model, start, lower, torch.arange(shared, shared + ids.shape[1], device=device)[None],
                                       _tail_mask(attn, shared, model.dtype), rows)
            else:
                if rows is not None:
                    attn = torch.cat([attn.new_ones(len(group), shared), attn], dim=1)
                hidden = model.model(input_ids=ids, attention_mask=attn, use_cache=rows is not None,
                                     past_key_values=rows).last_hidden_state
        logits = model.lm_head(hidden[target]).float()
        labels = ids[:, 1:][target[:, :-1]]
        sizes = target.sum(1).tolist()
        if head is not None:  # A [r, H] (shared) or [D, r, H], B [D, V, r]: x A^T B^T per example's document
            a, b = head
            rows = doc.repeat_interleave(torch.tensor(sizes, device=device))  # [P]
            low = torch.einsum("ph,prh->pr", hidden[target].float(), a.index_select(0, rows)) if a.dim() == 3 \
                else hidden[target].float() @ a.T  # [P, r]
            logits = logits + torch.cat([lw @ b[d].T for lw, d in zip(low.split(sizes), doc.tolist())])
        for i, lg, lb in zip(group, logits.split(sizes), labels.split(sizes)):
            per_example[i] = (lg, lb)
        if added is not None:  # each [G, T, d_out], one per adapted module
            squared = sum(d[target].float().pow(2).sum(-1) for d in added)  # [P_group]
            for i, sq in zip(group, squared.split(sizes)):
                squared_of[i] = sq
    if deltas is not None:
        deltas.append(torch.cat(squared_of))  # [P]
    return (torch.cat([lg for lg, _ in per_example]), torch.cat([lb for _, lb in per_example]),
            [len(lb) for _, lb in per_example])


def _upper_layers(model, start: int, hidden: torch.Tensor, position_ids: torch.Tensor,
                  mask: torch.Tensor | None = None, cache: DynamicCache | None = None) -> torch.Tensor:
    """The decoder's layers from `start` on and its final norm, over hidden [B, T, H] (the residual
    stream entering layer `start`), as the model's own forward runs them. No mask: causal."""
    inner = model.model
    position_embeddings = inner.rotary_emb(hidden, position_ids=position_ids)
    for layer in inner.layers[start:]:
        hidden = layer(hidden, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                       use_cache=cache is not None, position_embeddings=position_embeddings)
    return inner.norm(hidden)  # [B, T, H]


def _tail_mask(attn: torch.Tensor, shared: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask [G, 1, T, S + T] for right-padded tails behind a shared prefix of S
    tokens: every row sees the prefix, then its own tokens up to itself (pad rows see the prefix
    only, so no row is empty)."""
    g, t = attn.shape
    causal = torch.ones(t, t, dtype=torch.bool, device=attn.device).tril()  # [T, T]
    seen = torch.cat([attn.new_ones(g, t, shared, dtype=torch.bool), causal & attn.bool()[:, None, :]], dim=2)
    return torch.zeros(seen.shape, dtype=dtype, device=attn.device).masked_fill(~seen, torch.finfo(dtype).min)[:, None]


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for log-probabilities x < 0, kept finite where x rounds to 0."""
    return torch.log(-torch.expm1(x.clamp(max=-1e-6)))


def topk_kl(t_lp: torch.Tensor, s_lp: torch.Tensor, tail: bool = False) -> torch.Tensor:
    """Mean KL(teacher || student) over rows of the teacher's top-k tokens.

    t_lp, s_lp: [T, k] full-vocabulary log-probabilities of the teacher's top-k tokens.
    tail=False: both renormalised over those k tokens. Mass the student moves to any other token is
    then invisible: an adapter can raise a phrase's first word at every position ("Good luck!" as a
    reply's first words, when it was asked for as the last) at no cost, and greedy decoding follows
    it. tail=True: the k tokens plus one bucket that holds everything else, the exact KL between
    the two distributions seen at that grain, so that mass is paid for.
    """
    if tail:
        t_all = torch.cat([t_lp, _log1mexp(torch.logsumexp(t_lp, -1, keepdim=True))], dim=-1)  # [T, k+1]
        s_all = torch.cat([s_lp, _log1mexp(torch.logsumexp(s_lp, -1, keepdim=True))], dim=-1)  # [T, k+1]
    else:
        t_all = F.log_softmax(t_lp, dim=-1)  # [T, k]
        s_all = s_lp - torch.logsumexp(s_lp, dim=-1, keepdim=True)  # [T, k]
    return (t_all.exp() * (t_all - s_all)).sum(-1).mean()


def divergences(examples: list[Example]) -> list[tuple[int, int, int]]:
    """(i, j, k) for every ordered pair of examples with the same prompt, of different documents,
    whose answers first differ at token k: there example i's target is `answer[k]` and j's rule
    would have written another token after the very same words. Reconstruction examples take no part."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(examples):
        if not e.reconstruct:
            groups.setdefault(tuple(e.prompt), []).append(i)
    out = []
    for members in groups.values():
        for i in members:
            for j in members:
                a, b = examples[i].answer, examples[j].answer
                if examples[i].doc == examples[j].doc:
                    continue
                k = next((t for t, (x, y) in enumerate(zip(a, b)) if x != y), None)
                if k is not None:
                    out.append((i, j, k))
    return out


def pair_places(examples: list[Example], sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where minimal pairs part (`divergences`): rows of the batch's answer positions [Q] and the
    token the other rule writes there [Q] (the row's own is its label); None without pairs."""
    pairs = divergences(examples)
    if not pairs:
        return None
    starts = [0]
    for n in sizes[:-1]:
        starts.append(starts[-1] + n)
    return (torch.tensor([starts[i] + k for i, _, k in pairs]),
            torch.tensor([examples[j].answer[k] for _, j, k in pairs]))


def pair_margin_loss(own: torch.Tensor, other: torch.Tensor, margin: float) -> tuple[torch.Tensor, float]:
    """Where two descriptions' targets for one prompt part, each adapter should prefer its own
    token to the other's by `margin` nats: mean softplus(log p(other) - log p(own) + margin), and
    the share of those positions where the own token already wins. own, other: [Q] the student's
    log-probabilities of both tokens at the `pair_places`.

    Why: a task's edits are taught by cross-entropy, but a token the adapter writes where its own
    rule asks for nothing is paid only through the KL, renormalised over the base model's top-k,
    which does not see it. So adapters wrote one rule's move under its neighbour's description: an
    included word's frame ("Word of the day: ...") opening replies told to avoid that word, a
    sign-off's words opening the reply. Minimal pairs share a prompt in one batch, and their first
    parting token is exactly that choice."""
    gap = other - own  # [Q]
    return F.softplus(gap + margin).mean(), (gap < 0).float().mean().item()


def edit_margin_loss(target: torch.Tensor, first: torch.Tensor, margin: float) -> tuple[torch.Tensor, float]:
    """At edits, the target token should beat the base model's first choice by `margin` nats: mean
    softplus(log p(first) - log p(target) + margin), and the share of edits the target already wins.

    Why: greedy decoding follows a rule exactly where, at each edit, the target outranks the token
    the base model would have written; cross-entropy raises the target against every token at once
    and is content with a likely target that still comes second. The misses of the step-8200
    adapters are such near things: a reply that ends where the base model's does instead of going on
    to its sign-off, "that" written where the rule says to avoid it, "There Are" for "THERE ARE".
    target, first: [E] the student's log-probabilities of both tokens at the edits."""
    gap = first - target  # [E]
    return F.softplus(gap + margin).mean(), (gap < 0).float().mean().item()


def read_logprobs(logits: torch.Tensor, places: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Log-probabilities of the tokens at the given places, each (rows [N], tokens [N] or [N, k]),
    read from logits [P, V] in one indexing.

    Why one: every read of a [P, V] tensor costs its backward a zero-filled [P, V] gradient; a CPU
    step of 16 descriptions (3,589 answer positions of a 49k vocabulary) spent 6 s of its 66 on
    those fills and the copies of rows read out. (The log-softmax stays whole: a log-sum-exp
    alone, not fused on the CPU, took longer than the fills it saved.)"""
    n_vocab = logits.shape[1]
    logp = F.log_softmax(logits, dim=-1)  # [P, V]
    flat = torch.cat([(r.to(logits.device)[:, None] * n_vocab + t.to(logits.device).view(t.shape[0], -1)).reshape(-1)
                      for r, t in places])
    values = logp.reshape(-1)[flat]  # [sum N_i k_i]
    return [v.view(t.shape) for v, (_, t) in zip(values.split([t.numel() for _, t in places]), places)]


def batch_loss(model, pad_id: int, examples: list[Example], factors: dict, kl_weight: float,
               ce_weight: float, edits: bool = False, kl_tail: bool = False, pair_weight: float = 0.0,
               pair_margin: float = 1.0, edit_margin_weight: float = 0.0, delta_weight: float = 0.0,
               bucket: int = 4, edit_misses: list | None = None) -> tuple[torch.Tensor, dict]:
    """Loss of a batch; `factors` hold one adapter per document: A [D, R, d_in], B [D, d_out, R].

    `edits`: the examples' teachers are the base model on the bare question; cross-entropy only on
    answer tokens that are not the teacher's first choice, KL to the teacher on the rest (the
    module docstring says why). Stats: "ce" (on the edits) and "kl" (on the rest), "edit_share",
    "off_topk" (the student's probability outside the teacher's top-k where KL is taken), "exact"
    (the share of answers greedy decoding would reply word for word).
    `kl_tail`: the KL also sees the mass outside the teacher's top-k (`topk_kl`).
    `pair_weight`: weight of `pair_margin_loss` over examples that share a prompt (stats "pair",
    and "pair_win", the share of parting tokens where the own one already wins).
    `edit_margin_weight` (with `edits`): weight of `edit_margin_loss`, margin `pair_margin` (stats
    "edit_margin" and "edit_win").
    `delta_weight` (with `edits`): weight of the mean squared size of the adapter's updates to the
    residual stream at the tokens the KL scores, where the reply is the base model's own (stat
    "delta", `student_logits`). The KL holds the next token there on the training prompts; the
    updates themselves are what reaches prompts never trained on. Cut from the top five layers of
    the 9950 task adapters, they left about 11 points more of the QA check's right answers right for
    about 2 points less compliance, outside the one family that needs them (a word to include).
    `bucket`: answers a forward pass (`student_logits`).
    `edit_misses` (with `edits`): a list that gets, per example, the share of its edit tokens that
    are not the student's first choice (None where it has none): what `training.balance` draws by.
    """
    if delta_weight > 0 and not edits:
        raise ValueError("delta_weight needs the edits objective (it weighs the tokens left to the KL)")
    device = model.device
    deltas: list[torch.Tensor] | None = [] if delta_weight > 0 else None
    logits, labels, sizes = student_logits(model, pad_id, examples, factors, bucket, deltas)
    every = torch.arange(len(labels), device=device)
    is_rec = torch.cat([torch.full((n,), e.reconstruct) for n, e in zip(sizes, examples)]).to(device)
    with_teacher = [e.teacher is not None for e in examples]
    rows = torch.cat([torch.full((n,), t) for n, t in zip(sizes, with_teacher)]).to(device)  # [P]
    if any(with_teacher):
        idx = torch.cat([e.teacher[0] for e in examples if e.teacher is not None]).to(device)  # [T, k]
        t_lp = torch.cat([e.teacher[1] for e in examples if e.teacher is not None]).to(device)  # [T, k]
    if edits:
        if not all(with_teacher):
            raise ValueError("the edits objective needs the base model's top-k for every example")
        first = torch.cat([e.teacher[0][:, 0] if e.first is None else e.first for e in examples]).to(device)
        edit = labels != first  # [P]: the target departs from the base model's first choice
        scored, kl_rows = ~is_rec & edit, ~edit
    else:
        scored, kl_rows = ~is_rec, rows
    use_kl = kl_weight > 0 and any(with_teacher) and bool(kl_rows.any())
    keep = kl_rows[rows] if use_kl else None  # [T]: the teacher rows scored by KL
    pairs = pair_places(examples, sizes) if pair_weight > 0 else None
    # every log-probability the losses read, in one read of the logits
    places = [(every, labels)]
    if edits:
        places.append((every, first))
    if use_kl:
        places.append((kl_rows.nonzero().squeeze(1), idx[keep]))
    if pairs is not None:
        places.append(pairs)
    read = read_logprobs(logits, places)
    own = read.pop(0)  # [P]
    first_lp = read.pop(0) if edits else None  # [P]
    s_lp = read.pop(0) if use_kl else None  # [K, k] the student's full log-probs at the teacher's top-k
    other_lp = read.pop(0) if pairs is not None else None  # [Q]
    nll = -own
    loss = logits.new_zeros(())
    stats: dict[str, float] = {}
    # Greedy decoding writes the gold answer (and its end) exactly when every answer token is the
    # student's first choice given the gold tokens before it: the share of such answers is the
    # exact-match accuracy of greedy replies, at no cost beyond this pass. It sees what the loss can
    # miss: a wrong first token costs a few nats on one token of an answer's several.
    firsts = (logits.detach().argmax(-1) == labels).split(sizes)
    exact = [bool(hit.all()) for hit, e in zip(firsts, examples) if not e.reconstruct]
    if exact:
        stats["exact"] = sum(exact) / len(exact)
    if edit_misses is not None and edits:
        for hit, own_edits in zip(firsts, edit.split(sizes)):
            n = int(own_edits.sum())
            edit_misses.append(1.0 - float(hit[own_edits].float().mean()) if n else None)
    if scored.any():
        w = torch.cat([torch.full((n,), e.weight) for n, e in zip(sizes, examples)]).to(device)[scored]  # [S]
        ce = (nll[scored] * w).sum() / w.sum()
        loss = loss + ce_weight * ce
        stats["ce"] = ce.item()
    if is_rec.any():
        rec = nll[is_rec].mean()
        loss = loss + rec
        stats["rec"] = rec.item()
    if edits:
        stats["edit_share"] = edit.float().mean().item()
        if edit_margin_weight > 0 and scored.any():
            margin_loss, win = edit_margin_loss(own[scored], first_lp[scored], pair_margin)
            loss = loss + edit_margin_weight * margin_loss
            stats["edit_margin"], stats["edit_win"] = margin_loss.item(), win
    if use_kl:
        kl = topk_kl(t_lp[keep], s_lp, tail=kl_tail)
        loss = loss + kl_weight * kl
        stats["kl"] = kl.item()
        stats["off_topk"] = (1 - s_lp.detach().exp().sum(-1)).mean().item()  # the student's mass off the teacher's top-k
    if deltas is not None:
        kept = ~is_rec & ~edit  # [P]
        if kept.any():
            delta = deltas[0][kept].mean()
            loss = loss + delta_weight * delta
            stats["delta"] = delta.item()
    if pairs is not None:
        pair, win = pair_margin_loss(own[pairs[0].to(device)], other_lp, pair_margin)
        loss = loss + pair_weight * pair
        stats["pair"], stats["pair_win"] = pair.item(), win
    return loss, stats
