"""Training and held-out records: `{"id", "text", "qa": [{"q", "a"}], "genre"}` dicts."""
from __future__ import annotations

import json
from pathlib import Path

from .config import TrainConfig


def _read_jsonl(path: str) -> list[dict]:
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if not isinstance(rec.get("text"), str) or not rec.get("qa"):
            raise ValueError(f"{path}:{n}: each record needs 'text' and a non-empty 'qa' list")
        rec.setdefault("id", f"{Path(path).stem}-{n}")
        out.append(rec)
    return out


def open_heldout(cfg: TrainConfig, tokenizer=None) -> list[dict]:
    """Held-out synthetic genres and realistic kinds, alternating, every pooled value open: how
    well the generator copies values that no word pool holds. Genre "open:<genre or kind>"."""
    from ..datasets import realistic, synthetic
    from ..datasets.values import OpenValues, vocabulary_words

    opened = OpenValues(1.0, vocabulary_words(tokenizer) if tokenizer else None)
    genres = list(cfg.holdout_genres) or synthetic.resolve_genres()
    seed = cfg.seed + 20_000
    out = []
    for i in range(cfg.heldout_open):
        if i % 2 == 0:
            rec = synthetic.make_record(seed, i, genres, open_values=opened)
        else:
            rec = realistic.make_record(seed, i, list(realistic.DEFAULT_HOLDOUT_KINDS), open_values=opened)
        out.append({**rec, "genre": "open:" + rec["genre"].split(":")[-1]})
    return out


def long_heldout(cfg: TrainConfig, tokenizer=None) -> list[dict]:
    """Needle records over held-out prose of `heldout_long_tokens`: genre "long:<source>"."""
    from ..datasets.needles import NeedleMaker

    lo, hi = cfg.heldout_long_tokens
    maker = NeedleMaker(tokenizer, split="heldout", min_tokens=lo, max_tokens=hi, label="long")
    return [maker.record(cfg.seed + 30_000, i) for i in range(cfg.heldout_long)]


def unseen_heldout(cfg: TrainConfig, tokenizer=None) -> list[dict]:
    """Needle records of relations never trained on (`needles.VALIDATION`) over held-out prose of
    `heldout_unseen_tokens`: genre "unseen:<source>"."""
    from ..datasets.needles import VALIDATION, NeedleMaker

    lo, hi = cfg.heldout_unseen_tokens
    maker = NeedleMaker(tokenizer, split="heldout", min_tokens=lo, max_tokens=hi, label="unseen", templates=VALIDATION)
    return [maker.record(cfg.seed + 40_000, i) for i in range(cfg.heldout_unseen)]


def load_records(cfg: TrainConfig, tokenizer=None) -> tuple[list[dict], list[dict]]:
    """(train, held-out). Held-out documents come from genres never used for training."""
    train, heldout = [], []
    if cfg.synthetic_docs or cfg.heldout_docs:
        from ..datasets import synthetic

        genres = [g for g in synthetic.GENRES if g not in set(cfg.holdout_genres)]
    if cfg.synthetic_docs:
        train = synthetic.generate(cfg.synthetic_docs, seed=cfg.seed, genres=genres)
    if cfg.heldout_docs:
        held_genres = list(cfg.holdout_genres) or genres
        heldout = synthetic.generate(cfg.heldout_docs, seed=cfg.seed + 10_000, genres=held_genres)
    if cfg.heldout_realistic:
        from ..datasets import realistic

        heldout += realistic.generate(cfg.heldout_realistic, seed=cfg.seed + 10_000,
                                      kinds=list(realistic.DEFAULT_HOLDOUT_KINDS))
    if cfg.heldout_cloze:
        from ..datasets import cloze

        heldout += cloze.generate(cfg.heldout_cloze, seed=cfg.seed + 10_000, split="heldout")
    if cfg.heldout_open:
        heldout += open_heldout(cfg, tokenizer)
    if cfg.heldout_long:
        heldout += long_heldout(cfg, tokenizer)
    if cfg.heldout_unseen:
        heldout += unseen_heldout(cfg, tokenizer)
    for path in cfg.heldout_files:
        heldout += [{**r, "genre": f"select:{r.get('genre') or 'document'}", "as_read": cfg.files_as_read}
                    for r in _read_jsonl(path)]
    if cfg.heldout_tasks or cfg.heldout_task_select:
        from ..datasets import tasks
        from ..datasets.select_wordings import SELECT_WORDINGS

        replies = tasks.load_replies(cfg.task_replies)
        heldout += [tasks.make_record(cfg.seed + 10_000, i, replies, families=cfg.task_families or None,
                                       composed=cfg.task_composed_wordings, include_frames=cfg.task_include_frames)
                    for i in range(cfg.heldout_tasks)]
        if cfg.heldout_task_select:
            heldout += tasks.wording_records(cfg.seed + 10_000, SELECT_WORDINGS, replies,
                                             include_frames=cfg.task_include_frames)
    for path in cfg.jsonl:
        train.extend(_read_jsonl(path))
    for i, rec in enumerate(train):
        rec.setdefault("id", f"train-{i}")
    for i, rec in enumerate(heldout):
        rec["id"] = f"heldout-{i}"
    if not train and not cfg.stream:
        raise ValueError("no training records: set synthetic_docs, jsonl or stream")
    return train, heldout


def load_passages(cfg: TrainConfig, tokenizer) -> list[dict]:
    """Question-free records cut from plain-text corpora, for the reconstruction objective."""
    if not cfg.pretrain_sources:
        return []
    from ..datasets.corpora import available_sources, iter_passages

    missing = sorted(set(cfg.pretrain_sources) - set(available_sources()))
    if missing:
        raise ValueError(f"pretrain_sources {missing} are not available here (have: {available_sources()})")
    out = []
    for i, text in enumerate(iter_passages(64, 256, tokenizer, seed=cfg.seed, sources=cfg.pretrain_sources)):
        if i >= cfg.pretrain_passages:
            break
        out.append({"id": f"passage-{i}", "text": text, "qa": []})
    if not out:
        raise ValueError(f"pretrain_sources {cfg.pretrain_sources} gave no passages")
    return out


class RecordStream:
    """Fresh training records on demand: record i depends on (seed, i) only, so a resumed run sees
    what an uninterrupted one would, and no document is drawn twice."""

    SOURCES = ("synthetic", "realistic", "cloze", "needle", "tasks", "instructions")

    def __init__(self, cfg: TrainConfig, tokenizer=None):
        unknown = sorted(set(cfg.stream) - set(self.SOURCES))
        if unknown or not cfg.stream or min(cfg.stream.values()) < 0 or sum(cfg.stream.values()) <= 0:
            raise ValueError(f"stream needs positive weights over {self.SOURCES}; got {cfg.stream}")
        self.seed = cfg.seed if cfg.stream_seed is None else cfg.stream_seed
        self.names = list(cfg.stream)
        total = sum(cfg.stream.values())
        self.weights = [cfg.stream[n] / total for n in self.names]
        self.open_values = None
        if cfg.open_values > 0:  # the held-out records stay closed: only the stream opens
            from ..datasets.values import OpenValues, vocabulary_words
            self.open_values = OpenValues(cfg.open_values, vocabulary_words(tokenizer) if tokenizer else None)
        self.balance = None  # the tasks' family draws by miss rate (`task_balance`), updated by the trainer
        if cfg.task_balance > 0 and "tasks" in self.names:
            from ..datasets.tasks import families
            from .balance import FamilyBalance

            if cfg.task_families:
                raise ValueError("task_balance draws among all training families: leave task_families empty")
            self.balance = FamilyBalance(families("train", extra=cfg.task_extra_families, labels=cfg.task_labels),
                                         cfg.task_balance, cfg.task_balance_decay)
        self.makers = {n: getattr(self, f"_{n}")(cfg, self.seed, tokenizer) for n in self.names}

    def record(self, index: int) -> dict:
        import random

        roll, acc = random.Random(f"d2l-stream:{self.seed}:{index}").random(), 0.0
        for name, w in zip(self.names, self.weights):
            acc += w
            if roll < acc:
                break
        rec = self.makers[name](index)
        return {**rec, "id": f"stream-{name}-{index}", "fresh": True}

    def _synthetic(self, cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import synthetic

        genres = synthetic.resolve_genres(None, cfg.holdout_genres)
        return lambda i: synthetic.make_record(seed, i, genres, open_values=self.open_values)

    def _realistic(self, cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import realistic

        # also leave out kinds named like a held-out synthetic genre (e.g. recipe), so that figure
        # stays one of genres never trained on
        held = set(realistic.DEFAULT_HOLDOUT_KINDS) | set(cfg.holdout_genres)
        kinds = [k for k in realistic.KINDS if k not in held]
        if cfg.realistic_everyday:
            kinds += [k for k in realistic.EVERYDAY_KINDS if k not in held]
        return lambda i: realistic.make_record(seed, i, kinds, open_values=self.open_values)

    @staticmethod
    def _cloze(cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import cloze

        return cloze.make_stream(seed, tokenizer=tokenizer, split="train")

    def _needle(self, cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import needles

        return needles.make_stream(seed, tokenizer=tokenizer, open_values=self.open_values,
                                   composed=cfg.needle_composed, everyday=cfg.needle_everyday)

    def _tasks(self, cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import tasks

        replies = tasks.load_replies(cfg.task_replies, more_questions=cfg.task_more_questions)
        stub_pool = tasks.stub_words(tokenizer) if cfg.task_stub_keys else ()
        return lambda i: tasks.make_record(seed, i, replies, families=cfg.task_families or None,
                                             composed=cfg.task_composed_wordings, open_params=cfg.task_open_params,
                                             wide=cfg.task_wide_wordings, extra=cfg.task_extra_families,
                                             near_miss=cfg.task_near_miss, free_phrases=cfg.task_free_phrases,
                                             include_frames=cfg.task_include_frames,
                                             pairs=cfg.task_pairs, synonyms=cfg.task_synonyms,
                                             labels=cfg.task_labels, context=cfg.task_context,
                                             whole_limits=cfg.task_whole_limits, wide_words=cfg.task_wide_words,
                                             word_phrases=cfg.task_word_phrases,
                                             known_answers=cfg.task_known_answers,
                                             plain=cfg.task_plain_wordings, null_pairs=cfg.task_null_pairs,
                                             exclamations=cfg.task_exclamations, stub_keys=cfg.task_stub_keys,
                                             stub_pool=stub_pool,
                                             negations=cfg.task_negations,
                                             affirmations=cfg.task_affirmations, dropout=cfg.task_dropout,
                                             avoid_tidy=cfg.task_avoid_tidy, digits=cfg.task_digits,
                                             answer_cuts=cfg.task_answer_cuts, open_labels=cfg.task_open_labels,
                                             shifted_labels=cfg.task_shifted_labels,
                                             sequence_labels=cfg.task_sequence_labels,
                                             open_prefixes=cfg.task_open_prefixes,
                                             family_weights=self.balance.weights() if self.balance else None)

    @staticmethod
    def _instructions(cfg: TrainConfig, seed: int, tokenizer):
        from ..datasets import instructions, tasks

        if not cfg.edits:  # without it their answers, the base model's own replies, would be targets
            raise ValueError("instruction records are scored by KL to a guided teacher: they need `edits: true`")
        replies = tasks.load_replies(cfg.task_replies)
        return lambda i: instructions.make_record(seed, i, replies, cfg.instruction_guidance)
