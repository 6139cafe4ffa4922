"""`vllm-d2l train --config FILE`: meta-train the hypernetwork on CPU, resumably.

One step: for each of `batch_docs` documents, cut it into 1..max_chunks chunks (so rank
concatenation is trained, not just hoped for), encode the chunks with the frozen base model, let the
hypernetwork write per-chunk factors, concatenate them with the always-on block, and score the
adapter with the distillation (or reconstruction) loss. Teacher outputs are cached per question.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch

from ..base_model import ensure_default_model, load_model_and_tokenizer
from ..encoder import Encoder
from ..hypernet import Hypernet, HypernetConfig
from . import checkpoint
from .config import TrainConfig
from .data import load_records
from .objectives import reconstruct_loss, student_loss, teacher_topk


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        model_dir = Path(cfg.model_dir) if cfg.model_dir else ensure_default_model()
        self.model, self.tok = load_model_and_tokenizer(model_dir, dtype=torch.bfloat16)
        if cfg.init_from:
            self.net = Hypernet.load(cfg.init_from, self.model.config)
        else:
            hcfg = HypernetConfig.for_base_model(self.model.config, base_model=model_dir.name, **cfg.hypernet)
            self.net = Hypernet(hcfg)
        self.net.train()
        self.encoder = Encoder(self.model, self.net.config.source_layers)
        self.train_set, self.heldout = load_records(cfg)
        decay = [p for n, p in self.net.named_parameters() if p.dim() >= 2 and not n.startswith("bias_")]
        rest = [p for n, p in self.net.named_parameters() if not (p.dim() >= 2 and not n.startswith("bias_"))]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
        self.step = 0
        self.teacher_cache: dict[str, list] = {}
        ckpt = self.out / "checkpoint"
        if (ckpt / "state.json").is_file():
            self.step = checkpoint.load(ckpt, self.net, self.opt)["step"]

    # ----------------------------------------------------------------------------- one document
    def doc_factors(self, ids: list[int], n_chunks: int) -> dict:
        """Differentiable factors of one document split into `n_chunks` near-equal chunks."""
        size = math.ceil(len(ids) / n_chunks)
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        width = max(len(c) for c in chunks)
        x = torch.full((len(chunks), width), self.tok.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros_like(x, dtype=torch.bool)
        for i, c in enumerate(chunks):
            x[i, :len(c)] = torch.tensor(c)
            mask[i, :len(c)] = True
        feats = self.encoder(x, mask.long())
        per_chunk = self.net(feats, mask)
        bias = self.net.bias_factors()
        out = {}
        for k, (a, b) in per_chunk.items():
            parts_a = [a[i] for i in range(len(chunks))] + ([bias[k][0]] if bias else [])
            parts_b = [b[i] for i in range(len(chunks))] + ([bias[k][1]] if bias else [])
            out[k] = (torch.cat(parts_a, 0), torch.cat(parts_b, 1))
        return out

    def teacher(self, rec: dict, qa: list[dict]) -> list:
        key = rec["id"]
        if key not in self.teacher_cache:
            self.teacher_cache[key] = teacher_topk(self.model, self.tok, rec["text"], rec["qa"], self.cfg.kl_topk)
        cached = self.teacher_cache[key]
        return [cached[rec["qa"].index(x)] for x in qa]

    def doc_loss(self, rec: dict, rng: random.Random, pretrain: bool) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        ids = self.tok(rec["text"], add_special_tokens=False)["input_ids"]
        n_chunks = rng.randint(1, max(1, min(cfg.max_chunks, len(ids) // 32)))
        factors = self.doc_factors(ids, n_chunks)
        if pretrain:
            loss, stats = reconstruct_loss(self.model, self.tok, factors, ids, cfg.reconstruct_tokens)
        else:
            qa = rec["qa"] if len(rec["qa"]) <= cfg.max_questions else rng.sample(rec["qa"], cfg.max_questions)
            teacher = self.teacher(rec, qa) if cfg.kl_weight > 0 else None
            loss, stats = student_loss(self.model, self.tok, factors, qa, teacher, cfg.kl_weight, cfg.ce_weight)
        if cfg.l1_weight:
            l1 = sum(b.abs().mean() for _, b in factors.values()) / len(factors)
            loss = loss + cfg.l1_weight * l1
        stats["chunks"] = n_chunks
        return loss, stats

    # ----------------------------------------------------------------------------- loop
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def train_step(self) -> dict:
        cfg = self.cfg
        rng = random.Random(cfg.seed * 1_000_003 + self.step)  # resumable: a step's data depends on its number only
        recs = [self.train_set[rng.randrange(len(self.train_set))] for _ in range(cfg.batch_docs)]
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        self.opt.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for rec in recs:
            pretrain = rng.random() < cfg.pretrain_prob
            loss, stats = self.doc_loss(rec, rng, pretrain)
            (loss / len(recs)).backward()
            for k, v in {"loss": loss.item(), **stats}.items():
                totals[k] = totals.get(k, 0.0) + v / len(recs)
        totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip))
        self.opt.step()
        self.step += 1
        totals["gate"] = float(self.net.gate.abs().mean())
        return totals

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.net.eval()
        sums: dict[str, float] = {}
        rng = random.Random(12345)
        for rec in self.heldout:
            _, stats = self.doc_loss(rec, rng, pretrain=False)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v / len(self.heldout)
        self.net.train()
        return {f"heldout_{k}": v for k, v in sums.items()}

    def save(self) -> None:
        checkpoint.save(self.out / "checkpoint", self.net, self.opt, {"step": self.step})
        self.net.save(self.out / "hypernet", dtype=torch.bfloat16)  # the shippable form

    def run(self, progress: bool = True) -> None:
        cfg = self.cfg
        (self.out / "config.json").write_text(cfg.to_json())
        log = open(self.out / "log.jsonl", "a")
        deadline = time.time() + 60 * cfg.max_minutes if cfg.max_minutes else None
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=cfg.steps, initial=self.step, unit="step", desc="training", dynamic_ncols=True)
        t0 = time.time()
        while self.step < cfg.steps:
            stats = self.train_step()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", gate=f"{stats['gate']:.3f}")
            if self.step % cfg.log_every == 0 or self.step == 1:
                log.write(json.dumps({"step": self.step, "time": round(time.time() - t0, 1), **stats}) + "\n")
                log.flush()
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.heldout:
                log.write(json.dumps({"step": self.step, **self.evaluate()}) + "\n")
                log.flush()
            if self.step % cfg.save_every == 0:
                self.save()
            if deadline and time.time() > deadline:
                break
        self.save()
        if bar:
            bar.close()
        log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vllm-d2l train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, type=Path, help="training config (.json or .yaml)")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.add_argument("--max-minutes", type=float, help="stop (after saving) after this many minutes")
    p.add_argument("--out-dir", help="override the run folder")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_file(args.config)
    if args.steps is not None:
        cfg.steps = args.steps
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.out_dir:
        cfg.out_dir = args.out_dir
    Trainer(cfg).run()
    return 0
