"""`vllm-d2l train --config FILE`: meta-train the hypernetwork on CPU, resumably.

One step: for each of `batch_docs` documents, cut it into 1..max_chunks chunks (so rank
concatenation is trained, not just hoped for), encode the chunks with the frozen base model, let the
hypernetwork write per-chunk factors, concatenate them with the always-on block, and score the
adapter with the distillation (or reconstruction) loss. Teacher outputs are cached per question.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, ContextManager

import torch
from safetensors.torch import load_file
from torch.profiler import record_function

from ..base_model import ensure_default_model, load_model_and_tokenizer
from ..datasets import corpora
from ..encoder import Encoded, Encoder, pack_chunks, read_behind
from ..hypernet import HypernetBase, HypernetConfig, build
from ..token_variants import KINDS as VARIANT_KINDS
from . import checkpoint, scoring
from .averaging import WeightAverage
from .config import TrainConfig
from .data import RecordStream, load_passages, load_records
from .objectives import (batch_loss, guided_topk, qa_examples, reconstruct_example, teacher_topk,
                         teacher_topk_and_states)
from .publish import read_log


def is_common_answer(answer: str) -> bool:
    """A gold answer made of ordinary words: no digit, and not a name (its first letter is lower case)."""
    answer = answer.strip()
    return bool(answer) and answer[0].islower() and not any(ch.isdigit() for ch in answer)


def group_of(name: str, p: torch.nn.Parameter) -> str:
    """The optimizer group of a hypernetwork parameter. Groups are made in order of first
    appearance, so a checkpoint's optimizer state is indexed by this grouping."""
    if name == "pointer_gain":  # the copy path, switched on in a trained run: its gain at its own rate
        return "pointer_gain"
    if name in ("pointer_key_own", "pointer_key_embed"):  # its keys' own maps, switched on later still
        return "pointer_embed"
    if name == "pointer_key_ahead":  # the keys' map of the state ahead, at the keys' maps' rate
        return "pointer_ahead"
    if name == "pointer_variant_gain":  # the weights of its tokens' spelling variants, switched on later again
        return "pointer_variants"
    if name.startswith("pointer_"):  # and the rest of it
        return "pointer"
    if name.startswith("bias_"):
        return "bias"
    if name.startswith("value."):
        return "value"
    if name == "ridge":  # one number per layer: at the base rate it would barely move
        return "ridge"
    if name.startswith("write"):  # the write gate: no decay pulling it back to "write all"
        return "write"
    if name.startswith("doc_key."):  # its own group (decay pulls it back to the shared map)
        return "doc_key"
    if name.startswith("pool_"):
        return "pooled"
    if name.startswith("embed_value."):  # switched on in a trained run: a group of its own, after the rest
        return "embed_value"
    return "decay" if p.dim() >= 2 else "rest"


class Trainer:
    def __init__(self, cfg: TrainConfig, scoring_weights: Path | None = None):
        """`scoring_weights`: a folder of weights written for a scorer process (`training.scoring`): the
        network comes from it, and nothing a training step needs is loaded (the record stream, the
        run's checkpoint and optimizer, the weight average)."""
        self.cfg = cfg
        if cfg.answer_space and (cfg.kl_weight > 0 or cfg.edits):
            raise ValueError("answer_space changes the gold answers' tokens, which the teacher's (kl_weight, "
                             "edits) do not follow: use it with cross-entropy only (kl_weight: 0, edits: false)")
        if cfg.corpora:
            corpora.require(cfg.corpora)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        model_dir = Path(cfg.model_dir) if cfg.model_dir else ensure_default_model()
        self.device = torch.device(cfg.device)
        self.model, self.tok = load_model_and_tokenizer(model_dir, dtype=getattr(torch, cfg.dtype), device=cfg.device)
        scoring_only = scoring_weights is not None
        source = scoring_weights or cfg.init_from or cfg.branch_from
        if source:  # the network of that checkpoint, with this config's changes
            self.net = HypernetBase.load(source, self.model.config, overrides=cfg.hypernet)
        else:
            hcfg = HypernetConfig.for_base_model(self.model.config, base_model=model_dir.name, **cfg.hypernet)
            self.net = build(hcfg)
        self.net.to(self.device).train()
        self.net.bind_tokenizer(self.tok)
        if cfg.train_overlap and not self.net.config.chunk_overlap:
            raise ValueError("train_overlap reads chunks behind the hypernetwork's chunk_overlap tokens, "
                             "which is 0: set hypernet.chunk_overlap (a token-kind field)")
        self.encoder = Encoder(self.model, self.net.config.source_layers, self.net.capture)
        self.train_set, self.heldout = load_records(cfg, self.tok)
        self.stream = RecordStream(cfg, self.tok) if cfg.stream and not scoring_only else None
        self.passages = load_passages(cfg, self.tok)
        ckpt = self.out / "checkpoint"
        parent = None if scoring_only else ckpt if (ckpt / "state.json").is_file() \
            else Path(cfg.branch_from) if cfg.branch_from else None
        self.opt = torch.optim.AdamW(self.param_groups(first=checkpoint.group_names(parent) if parent else ()), lr=cfg.lr)
        self.step = 0
        self.teacher_cache: dict[str, list] = {}
        self.lower_cache: dict[str, list] = {}
        self.replies_taught: OrderedDict[tuple[str, str], tuple] = OrderedDict()  # (question, reply) -> (top-k, states)
        self.teacher_seconds = 0.0  # the base model's own top-k: where a step's time goes, on a GPU too
        self.last_heldout: dict | None = None  # the latest hold-out row this process wrote
        self.warm_from = 0  # the step the learning-rate warm-up counts from
        own: dict = {}  # the run's own saved state, whose weight average it continues
        if parent:  # its own run or another's (`branch_from`): optimizer and step included; the
            # config may switch a zero-started part on
            loaded = checkpoint.load(parent, self.net, self.opt, grow=True)
            self.step = loaded["step"]
            if self.stream and self.stream.balance and "family_balance" in loaded:
                self.stream.balance.load(loaded["family_balance"])
            own = loaded if parent == ckpt else {}
            self.apply_rate_multipliers()
        elif cfg.resume_from and not scoring_only:  # a committed snapshot: weights and step, optimizer started afresh
            self.step = self.warm_from = checkpoint.load_snapshot(Path(cfg.resume_from), self.net)
        # a running average of the weights, scored beside them (`ema_decay`): it starts at the
        # loaded weights, or continues the one saved in the run's own checkpoint
        self.average = WeightAverage(self.net, cfg.ema_decay) if cfg.ema_decay and not scoring_only else None
        self.scorer = None  # the scorer process of the latest evaluation (`eval_async`)
        if self.average is not None and "average" in own and (ckpt / "average.safetensors").is_file():
            self.average.load(load_file(str(ckpt / "average.safetensors")), own["average"])

    def group_rates(self) -> dict[str, tuple[float, float]]:
        """(lr_mult, weight decay) of each group: decay on matrices only; the always-on block
        (answer style, the same for every document) and the value maps at their own rates."""
        cfg = self.cfg
        return {"bias": (cfg.bias_lr_mult, 0.0), "value": (cfg.value_lr_mult, cfg.weight_decay),
                "ridge": (cfg.ridge_lr_mult, 0.0), "write": (1.0, 0.0), "doc_key": (1.0, cfg.weight_decay),
                "pooled": (1.0, 0.0),
                "embed_value": (cfg.value_lr_mult if cfg.embed_value_lr_mult is None else cfg.embed_value_lr_mult,
                                cfg.weight_decay),
                "pointer": (1.0, 0.0), "pointer_gain": (cfg.pointer_gain_lr_mult, 0.0),
                "pointer_embed": (cfg.pointer_embed_lr_mult, 0.0), "pointer_variants": (cfg.pointer_gain_lr_mult, 0.0),
                "pointer_ahead": (cfg.pointer_embed_lr_mult, 0.0), "decay": (1.0, cfg.weight_decay), "rest": (1.0, 0.0)}

    def param_groups(self, first: tuple[str, ...] | list[str] = ()) -> list[dict]:
        """Optimizer groups, those named in `first` (a checkpoint's, in its order) ahead of the rest:
        a network that switched on new parts puts them in groups after the saved ones, wherever
        their parameters sit in the network."""
        rates = self.group_rates()
        groups: dict[str, dict] = {}
        for name, p in self.net.named_parameters():
            key = group_of(name, p)
            mult, decay = rates[key]
            groups.setdefault(key, {"params": [], "weight_decay": decay, "lr_mult": mult, "name": key})["params"].append(p)
        rank = {name: i for i, name in enumerate(first)}
        return sorted(groups.values(), key=lambda g: rank.get(g["name"], len(rank)))  # stable: the rest keep their order

    def apply_rate_multipliers(self) -> None:
        """The config, not a resumed checkpoint, says each group's rate, so a run can be retuned."""
        rates = self.group_rates()
        for g in self.opt.param_groups:
            if "name" in g:
                g["lr_mult"] = rates[g["name"]][0]

    # ----------------------------------------------------------------------------- a batch of documents
    def batch_factors(self, docs: list[list[int]], n_chunks: list[int]) -> dict:
        """Differentiable adapters of several documents, each cut into its own number of chunks.

        The documents' chunks (of nearly equal length within a document) go through the frozen
        encoder a few documents a pass, at most `pass_rows` chunks unless one document has more:
        one pass per document made a GPU step of 16 descriptions 16 passes of launches. Each
        document's rows are then cut back to its own width, and the hypernetwork combines its
        chunks as its kind does: A [D, R, d_in], B [D, d_out, R].
        """
        pad = self.tok.pad_token_id or 0
        overlap = self.net.config.chunk_overlap if self.cfg.train_overlap else 0
        chunked = []  # per document: its chunks as read, (tokens, leading context)
        for ids, n in zip(docs, n_chunks):
            size = math.ceil(len(ids) / n)
            chunked.append(read_behind([ids[i:i + size] for i in range(0, len(ids), size)], overlap))
        parts = []  # per document: (Encoded, mask, write)
        for group in consecutive_passes([len(c) for c in chunked], self.cfg.pass_rows):
            x, mask, write = (t.to(self.device) for t in pack_chunks([c for d in group for c in chunked[d]], pad))
            seen = self.encoder(x, mask.long())  # [N, ...] every chunk of the group, padded to the widest
            row = 0
            for d in group:
                rows, w = slice(row, row + len(chunked[d])), max(len(c) for c, _ in chunked[d])
                parts.append((seen.cut(rows, w), mask[rows, :w], write[rows, :w]))
                row += len(chunked[d])
        if self.step == 0 and self.net.training and not (self.cfg.init_from or self.cfg.resume_from
                                                         or self.cfg.branch_from):
            self.net.calibrate_(*Encoded.concat([e for e, _, _ in parts], [m for _, m, _ in parts]))
        return self.net.document_factors(parts)

    def served_chunks(self, ids: list[int]) -> int:
        """How many chunks the generator cuts a document into (one per `chunk_tokens`)."""
        return math.ceil(len(ids) / self.net.config.chunk_tokens)

    def teacher(self, rec: dict) -> list:
        """Teacher top-k for every question of a record, computed once and cached."""
        return self.teachers([rec])[0][0]

    def teachers(self, recs: list[dict]) -> tuple[list[list], list[list | None]]:
        """Teacher top-k for every question of each record; cached by id, except streamed records.
        And per record, where the bare base model is its teacher, the states its questions enter
        the first adapted layer with (`Example.lower`; cached alike); else None.

        Where the bare base model is the teacher (the edits objective without guidance), the
        records' questions go through it together: a prompt holds no document then, so one pass
        serves the batch, where one pass per record leaves a GPU waiting on launches."""
        cfg = self.cfg
        out: list[list | None] = [self.teacher_cache.get(r["id"]) for r in recs]
        lower: list[list | None] = [self.lower_cache.get(r["id"]) for r in recs]
        todo = [i for i, o in enumerate(out) if o is None]
        if not todo:
            return out, lower
        t0 = time.time()  # the top-k comes back on the CPU, so this waits for the device too
        bare = []
        for i in todo:
            rec = recs[i]
            guidance = rec.get("guidance") or (cfg.task_teacher_guidance if rec.get("genre", "").startswith("task") else 0)
            if cfg.edits and guidance:
                out[i] = guided_topk(self.model, self.tok, rec["text"], rec["qa"], cfg.kl_topk, guidance,
                                     cfg.pass_rows)
            elif cfg.edits:  # the base model is its own teacher
                bare.append(i)
            else:
                out[i] = teacher_topk(self.model, self.tok, rec["text"], rec["qa"], cfg.kl_topk, cfg.pass_rows)
        if bare:
            taught = self.bare_replies([q for i in bare for q in recs[i]["qa"]])
            for i in bare:
                n = len(recs[i]["qa"])
                mine, taught = taught[:n], taught[n:]
                out[i] = [top for top, _ in mine]
                if all(states is not None for _, states in mine):
                    lower[i] = [states for _, states in mine]
        for i in todo:
            if not recs[i].get("fresh"):  # streamed records are never seen twice: caching them only grows memory
                self.teacher_cache[recs[i]["id"]] = out[i]
                if lower[i] is not None:  # the hold-out's: about 100 MB for the task run's, fp32
                    self.lower_cache[recs[i]["id"]] = lower[i]
        self.teacher_seconds += time.time() - t0
        return out, lower

    def bare_replies(self, qa: list[dict]) -> list[tuple]:
        """The bare base model's (top-k, states entering the first adapted layer or None) for each
        question and reply; those taught before (`teacher_replies`) are not taught again, the
        others go through the model together."""
        cfg = self.cfg
        # the student's tokens exactly, unless its answers are spelt with a leading space
        keep = 0 if cfg.answer_space else min(self.net.config.layers)
        keys = [(x["q"], x["a"]) for x in qa]
        todo = list(dict.fromkeys(k for k in keys if k not in self.replies_taught))
        fresh = {}
        if todo:
            tops, states = teacher_topk_and_states(self.model, self.tok, None, [{"q": q, "a": a} for q, a in todo],
                                                   cfg.kl_topk, cfg.pass_rows, keep_below=keep)
            fresh = dict(zip(todo, zip(tops, states or [None] * len(todo))))
        out = []
        for k in keys:
            if k in fresh:
                out.append(fresh[k])
            else:
                out.append(self.replies_taught[k])
                self.replies_taught.move_to_end(k)
        if cfg.teacher_replies:
            self.replies_taught.update(fresh)
            while len(self.replies_taught) > cfg.teacher_replies:
                self.replies_taught.popitem(last=False)
        return out

    def batch_loss(self, recs: list[dict], rng: random.Random, pretrain: list[bool],
                   adapter_from: list[dict] | None = None,
                   edit_misses: list | None = None) -> tuple[torch.Tensor, dict]:
        """Loss of the records' questions, each scored with the adapter of its own document (or of
        `adapter_from[i]`'s document: the wrong-document control of `evaluate`). `edit_misses`: gets
        (record index, miss rate) per example with edits (`objectives.batch_loss`)."""
        cfg = self.cfg
        docs = [self.tok(r["text"], add_special_tokens=False)["input_ids"] for r in adapter_from or recs]
        n_chunks = [self.served_chunks(ids) if rec.get("as_read")
                    else rng.randint(1, max(1, min(cfg.max_chunks, len(ids) // 32)))
                    for rec, ids in zip(adapter_from or recs, docs)]
        taught, lower = [None] * len(recs), [None] * len(recs)
        if cfg.kl_weight > 0 or cfg.edits:
            with record_function("teacher"):  # labels for `scripts/gpu_train.py run --profile`
                asked = [d for d in range(len(recs)) if not pretrain[d]]
                for d, top, states in zip(asked, *self.teachers([recs[d] for d in asked])):
                    taught[d], lower[d] = top, states
        examples = []
        for d, (rec, ids) in enumerate(zip(recs, docs)):
            if pretrain[d]:
                examples.append(reconstruct_example(self.tok, ids, cfg.reconstruct_tokens, d))
                continue
            chosen = sorted(rng.sample(range(len(rec["qa"])), min(cfg.max_questions, len(rec["qa"]))))
            mine = qa_examples(self.tok, [rec["qa"][i] for i in chosen], d, lead_space=cfg.answer_space)
            if self.net.training and cfg.common_answer_weight != 1.0:  # the hold-out stays an unweighted mean
                for e, i in zip(mine, chosen):
                    if is_common_answer(rec["qa"][i]["a"]):
                        e.weight = cfg.common_answer_weight
            if (cached := taught[d]) is not None:
                for e, i in zip(mine, chosen):
                    e.teacher, e.first = cached[i][:2], (cached[i][2] if len(cached[i]) > 2 else None)
                    if rec.get("distill"):  # the answer is the base model's own reply: no edits, KL everywhere
                        e.first = torch.tensor(e.answer)
                    if lower[d] is not None:
                        e.lower = lower[d][i]
            examples.extend(mine)
        with record_function("factors"):
            factors = self.batch_factors(docs, n_chunks)
        misses: list | None = [] if edit_misses is not None else None
        with record_function("loss"):
            loss, stats = batch_loss(self.model, self.tok.pad_token_id or 0, examples, factors,
                                     cfg.kl_weight, cfg.ce_weight, edits=cfg.edits, kl_tail=cfg.kl_tail,
                                     pair_weight=cfg.pair_weight if self.net.training else 0.0,
                                     pair_margin=cfg.pair_margin,
                                     edit_margin_weight=cfg.edit_margin_weight if self.net.training else 0.0,
                                     delta_weight=cfg.delta_weight if self.net.training else 0.0,
                                     bucket=cfg.pass_rows, edit_misses=misses)
        if misses is not None:
            edit_misses.extend((e.doc, m) for e, m in zip(examples, misses) if m is not None)
        if cfg.l1_weight:
            l1 = sum(b.abs().mean() for _, b in factors.values()) / len(factors)
            loss = loss + cfg.l1_weight * l1
        stats["chunks"] = sum(n_chunks) / len(n_chunks)
        return loss, stats

    # ----------------------------------------------------------------------------- loop
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        if cfg.lr_schedule in ("constant", "cooldown"):
            rate = cfg.lr * min(1.0, (step - self.warm_from + 1) / cfg.warmup)
            if cfg.lr_schedule == "cooldown":
                frac = min(1.0, max(0, step - cfg.cooldown_from) / max(1, cfg.cooldown_steps))
                rate *= 1.0 - (1.0 - cfg.cooldown_floor) * frac
            return rate
        if cfg.lr_schedule != "cosine":
            raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; known: cosine, constant, cooldown")
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def train_step(self) -> dict:
        cfg = self.cfg
        rng = random.Random(cfg.seed * 1_000_003 + self.step)  # resumable: a step's data depends on its number only
        if self.stream:
            recs = [self.stream.record(self.step * cfg.batch_docs + j) for j in range(cfg.batch_docs)]
        else:
            recs = [self.train_set[rng.randrange(len(self.train_set))] for _ in range(cfg.batch_docs)]
        pretrain = [rng.random() < cfg.pretrain_prob for _ in recs]
        if self.passages:  # reconstruction examples read corpus passages instead of training documents
            recs = [self.passages[rng.randrange(len(self.passages))] if p else r for r, p in zip(recs, pretrain)]
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step) * g.get("lr_mult", 1.0)
        self.opt.zero_grad(set_to_none=True)
        balance = self.stream.balance if self.stream else None
        misses: list | None = [] if balance else None
        loss, totals = self.batch_loss(recs, rng, pretrain, edit_misses=misses)
        if balance:
            balance.update([(str(recs[d].get("genre", "")).split(":", 1)[-1], m) for d, m in misses])
        with record_function("backward"):
            loss.backward()
        totals["loss"] = loss.item()
        with record_function("optimizer"):
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip))
            self.opt.step()
            if self.average is not None:
                self.average.update(self.net)
        self.step += 1
        gate = getattr(self.net, "gate", None)
        totals["gate"] = (gate if gate is not None else self.net.gain).detach().abs().mean().item()
        if getattr(self.net.config, "pointer_rank", 0):  # how far the copy path has opened
            totals["pointer_gain"] = self.net.pointer_gain.item()
            if self.net.config.pointer_variants:  # and how far each kind of spelling variant has
                totals |= {f"variant_{k}": v for k, v in zip(VARIANT_KINDS, self.net.pointer_variant_gain.tolist())}
        return totals

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out losses with each document's own adapter, and with another held-out document's.

        Lower loss with the own adapter could come from answer style alone (which any adapter
        teaches); only the gap to the wrong document's adapter measures carried content. Each
        source (synthetic genres, realistic kinds, cloze) is scored on its own, with the wrong
        document drawn from the same source, and overall (`heldout_ce`, ...: the mean over batches).
        """
        self.net.eval()
        groups: dict[str, list[dict]] = {}
        for rec in self.heldout:
            groups.setdefault(source_of(rec), []).append(rec)
        if "task" in groups:
            groups["task_short"] = short_questions_only(groups["task"])
        out: dict[str, float] = {}
        totals: dict[str, list[float]] = {}
        for name, recs in groups.items():
            for k, vals in self._evaluate_group(recs).items():
                out[f"heldout_{name}_{k}"] = sum(vals) / len(vals)
                if name not in PROBES:  # a probe beside the overall figures, which stay comparable
                    totals.setdefault(k, []).extend(vals)
        if self.cfg.heldout_task_comply and "task_select" in groups:
            out["heldout_task_select_comply"] = self._compliance(groups["task_select"])
        self.net.train()
        out.update({f"heldout_{k}": sum(v) / len(v) for k, v in totals.items()})
        for prefix in ["heldout_"] + [f"heldout_{g}_" for g in groups]:
            if prefix + "wrong_doc_ce" in out:
                out[prefix + "content_gap_ce"] = out[prefix + "wrong_doc_ce"] - out[prefix + "ce"]
        return out

    def _evaluate_group(self, heldout: list[dict]) -> dict[str, list[float]]:
        size = self.cfg.eval_batch_docs
        batches = [heldout[i:i + size] for i in range(0, len(heldout), size)]
        partner = wrong_document(heldout)
        per_batch: dict[str, list[float]] = {}
        for tag, wrong in (("", False), ("wrong_doc_", True)) if len(heldout) > 1 else (("", False),):
            rng = random.Random(12345)
            for b, recs in enumerate(batches):
                others = [heldout[partner[b * size + i]] for i in range(len(recs))]
                _, stats = self.batch_loss(recs, rng, [False] * len(recs), adapter_from=others if wrong else None)
                for k, v in stats.items():
                    if k in ("ce", "kl", "off_topk", "exact"):
                        per_batch.setdefault(tag + k, []).append(v)
        return per_batch

    def _compliance(self, records: list[dict]) -> float:
        """The share of greedy replies, under each description's adapter, that follow its rule."""
        from .compliance import compliance

        docs = [self.tok(r["text"], add_special_tokens=False)["input_ids"] for r in records]
        factors = self.batch_factors(docs, [self.served_chunks(d) for d in docs])
        share, _ = compliance(self.model, self.tok, records, factors, self.cfg.heldout_task_comply,
                              self.cfg.task_comply_tokens)
        return share

    def evaluate_row(self) -> dict:
        """The hold-out of the weights, and of their running average (`avg_` keys) when kept."""
        row = {"step": self.step, **self.evaluate()}
        if self.average is not None:
            with self.average.swapped_in(self.net):
                row.update({f"avg_{k}": v for k, v in self.evaluate().items()})
        return row

    def save(self) -> None:
        state, tensors = {"step": self.step}, None
        if self.stream and self.stream.balance:
            state["family_balance"] = self.stream.balance.state()
        if self.average is not None:
            tensors, state["average"] = self.average.state()
        checkpoint.save(self.out / "checkpoint", self.net, self.opt, state, average=tensors)
        self.net.save(self.out / "hypernet", dtype=torch.bfloat16)  # the shippable form
        row = self.last_heldout
        if row is None or row["step"] != self.step:  # only the weights the hold-out row scored
            return
        self.keep_if_best(row, lambda averaged: self.average.swapped_in(self.net) if averaged
                          else contextlib.nullcontext(), self.average.state()[1] if self.average else None)

    def keep_if_best(self, row: dict, holding: Callable[[bool], ContextManager], averaged_state: dict | None) -> None:
        """Write `row`'s weights (or their average, when it scored better) as the best snapshot if
        they beat the one on disk. `holding(averaged)` makes `self.net` hold the ones to write."""
        plain = {k: v for k, v in row.items() if not k.startswith("avg_")}
        averaged = {k[4:]: v for k, v in row.items() if k.startswith("avg_")}
        use_average = bool(averaged) and self.score(averaged) < self.score(plain)
        chosen = averaged if use_average else plain
        # Against the snapshot that is on disk, not the log's best row: a row's weights can be gone
        # (a run stopped between an evaluation and its save), and a hold-out that changed at
        # `heldout_since` makes older snapshots' scores incomparable. On a machine without the run's
        # folder that is the committed snapshot it resumed from: else the first evaluation there would
        # become the best however it scored.
        kept = self.out / "best" / "state.json"
        if not kept.is_file() and self.cfg.resume_from:
            kept = Path(self.cfg.resume_from) / "state.json"
        prior = json.loads(kept.read_text()) if kept.is_file() else None
        if prior is None or "heldout_content_gap_ce" not in prior or prior["step"] < self.cfg.heldout_since \
                or self.score(chosen) < self.score(prior):
            state = {**chosen, "step": row["step"]}
            if use_average:
                state["averaged"] = {"decay": averaged_state["decay"], "updates": averaged_state["count"]}
            with holding(use_average):
                checkpoint.save_snapshot(self.out / "best", self.net, state)

    def score(self, row: dict) -> float:
        """How the best checkpoint is chosen, on the training hold-out only: the held-out answer
        loss with the document's own adapter, less the content gap's reward, plus the weighted
        losses of the probes in `probe_weights` (lower is better; a row without one never wins)."""
        score = row["heldout_ce"] - 0.5 * row["heldout_content_gap_ce"]
        for name, weight in self.cfg.probe_weights.items():
            value = row.get(f"heldout_{name}" if name.endswith(("_ce", "_exact", "_comply")) else f"heldout_{name}_ce")
            if value is None:
                return math.inf
            score += weight * value
        return score

    def _log_rows(self) -> list[dict]:
        path = self.out / "log.jsonl"
        return read_log(path) if path.is_file() else []

    def run(self, progress: bool = True, until: int | None = None) -> None:
        """Train to `cfg.steps` (or stop early at step `until`, as an interruption would)."""
        cfg = self.cfg
        last = min(cfg.steps, until) if until else cfg.steps
        (self.out / "config.json").write_text(cfg.to_json())
        log = open(self.out / "log.jsonl", "a")
        deadline = time.time() + 60 * cfg.max_minutes if cfg.max_minutes else None
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=cfg.steps, initial=self.step, unit="step", desc="training", dynamic_ncols=True)
        t0 = time.time()
        if cfg.eval_async:  # weights a stopped run had queued and not yet scored
            self.scorer = scoring.resume(self.out)
        while self.step < last:
            stats = self.train_step()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", gate=f"{stats['gate']:.3f}")
            if self.step % cfg.log_every == 0 or self.step == 1:
                if self.stream and self.stream.balance:  # each family's running miss rate, as drawn by
                    stats["family_miss"] = {f: round(m, 3) for f, m in sorted(self.stream.balance.miss.items())}
                log.write(json.dumps({"step": self.step, "time": round(time.time() - t0, 1), **stats}) + "\n")
                log.flush()
            due = cfg.eval_every and self.step % cfg.eval_every == 0 and self.heldout
            if due and cfg.eval_async:
                self.scorer = scoring.queue(self, self.scorer)  # scored in another process
            elif due:
                self.last_heldout = self.evaluate_row()
                log.write(json.dumps(self.last_heldout) + "\n")
                log.flush()
                from ..evaluation.plots import training_chart
                training_chart(self.out / "log.jsonl", self.out / "curves.png")
            if self.step % cfg.save_every == 0 or (self.last_heldout or {}).get("step") == self.step:
                self.save()
            if deadline and time.time() > deadline:
                break
        self.save()
        if bar:
            bar.close()
        log.close()
        if self.scorer is not None:
            self.scorer.wait()


def consecutive_passes(sizes: list[int], most: int) -> list[list[int]]:
    """Indices of consecutive items grouped so that each group's sizes add up to at most `most`
    (an item larger than that alone)."""
    groups: list[list[int]] = []
    total = 0
    for i, n in enumerate(sizes):
        if not groups or total + n > most:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups


def wrong_document(records: list[dict]) -> list[int]:
    """For each record, the index of another one of the same genre (the next one, cyclically), so
    that the wrong-document control differs in the document only, not in its genre's answer
    style; records alone in their genre are paired half the list away."""
    n = len(records)
    out = []
    for i, rec in enumerate(records):
        same = [j for j in range(i + 1, i + n) if records[j % n].get("genre") == rec.get("genre")]
        out.append(same[0] % n if same else (i + n // 2) % n)
    return out


# held-out sources scored apart (see `TrainConfig.heldout_open`, `heldout_long`, `heldout_unseen`,
# `heldout_files`, `probe_weights`)
PROBES = ("open", "long", "unseen", "select", "task_short", "task_select")


def short_questions_only(records: list[dict]) -> list[dict]:
    """Task records cut to their short questions ("What is the capital of Spain?"), whose answers a
    rule must keep; under their own ids, as the teacher's cache is keyed by a record's id."""
    from ..datasets.short_questions import questions

    asked = {q["q"] for q in questions()}
    cut = [{**r, "id": f"{r['id']}#short", "qa": [x for x in r["qa"] if x["q"] in asked]} for r in records]
    return [r for r in cut if r["qa"]]


def source_of(rec: dict) -> str:
    """The data source a record comes from: "realistic", "cloze", "task", "open", "long", "unseen",
    "select", "task_select" or "synthetic"."""
    genre = str(rec.get("genre") or "")
    return genre.split(":", 1)[0] if ":" in genre else "synthetic"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vllm-d2l train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, type=Path, help="training config (.json or .yaml)")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.add_argument("--max-minutes", type=float, help="stop (after saving) after this many minutes")
    p.add_argument("--until", type=int, help="stop (after saving) at this step; the schedule still spans --steps")
    p.add_argument("--out-dir", help="override the run folder")
    p.add_argument("--evaluate", nargs="?", const="", metavar="HYPERNET",
                   help="print the held-out evaluation (JSON) of the run's checkpoint, or of the hypernetwork "
                        "folder given, and exit without training")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_file(args.config)
    if args.steps is not None:
        cfg.steps = args.steps
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.out_dir:
        cfg.out_dir = args.out_dir
    trainer = Trainer(cfg)
    if args.evaluate is not None:
        if args.evaluate:
            trainer.net.load_state_dict(HypernetBase.load(args.evaluate, trainer.model.config).state_dict())
        print(json.dumps({"step": trainer.step if not args.evaluate else None, "hypernet": args.evaluate or None,
                          **trainer.evaluate()}, indent=2))
        return 0
    trainer.run(until=args.until)
    return 0
