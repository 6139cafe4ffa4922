"""`TrainConfig`: one dataclass holds a whole training run, read from JSON or YAML."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    model_dir: str | None = None  # None: the default model
    hypernet: dict = field(default_factory=dict)  # HypernetConfig overrides (dim, rank, ...)
    init_from: str | None = None  # start from an existing hypernetwork checkpoint
    # Continue a run from a committed snapshot (`best/` of a run: bf16 weights + step) when the run
    # folder has no checkpoint of its own, e.g. on a fresh machine; the optimizer restarts with a
    # new warm-up.
    resume_from: str | None = None
    # Start from another run's full checkpoint (`runs/X/checkpoint`: weights, optimizer state and
    # step) when the run folder has none, with parameters this config adds (zero-started, such as
    # `own_write_keys`) in fresh optimizer groups. Steps draw their data by number, so the parent
    # run's log from that step on is the branch's control, with nothing else changed.
    branch_from: str | None = None
    # data
    synthetic_docs: int = 4000  # fictional fact documents generated for training
    heldout_docs: int = 48  # synthetic documents of the held-out genres
    heldout_realistic: int = 0  # realistic documents of their held-out kinds
    heldout_cloze: int = 0  # cloze records from the corpora's held-out passages
    # records of the held-out genres and kinds with every pooled value open (see `open_values`):
    # scored as their own source, outside the overall figures, so adding them moves no curve
    heldout_open: int = 0
    # long documents (`heldout_long_tokens`, several chunks) of held-out prose with one to three
    # invented facts in them: how far a fact survives the many tokens written around it. Scored
    # apart as source "long", like "open"
    heldout_long: int = 0
    heldout_long_tokens: tuple[int, int] = (600, 1000)
    # documents (`heldout_unseen_tokens`) of held-out prose with one to three facts of relations
    # never trained on (`datasets.needles.VALIDATION`), scored apart: how facts of any relation are stored
    heldout_unseen: int = 0
    heldout_unseen_tokens: tuple[int, int] = (200, 1000)
    # {"text","qa"} JSONL files of documents written by people (not by a generator of ours), scored
    # apart as the probe `select`: a set to choose snapshots by, kept apart from the reported sets.
    # The template hold-out picked step 16600 over 16200, which lost 10 to 3 questions on the
    # hand-written set and 15 to 3 needles of the needle test's relations.
    heldout_files: list[str] = field(default_factory=list)
    # The step at which the hold-out's records last changed (a data generator gained a format, say):
    # a best snapshot from before it is replaced by the next evaluation, as its score was taken on
    # other records and does not compare
    heldout_since: int = 0
    heldout_tasks: int = 0  # task descriptions (task mode): training families, unseen combinations
    # descriptions of every family (held-out ones too) worded apart from the training grammar and
    # from both reported wording sets (`datasets.select_wordings`), scored apart as the probe
    # `task_select`: the task hold-out's own records use training wordings, so it cannot see how a
    # snapshot reads a description worded otherwise, which is what the wording targets measure
    heldout_task_select: bool = False
    # Prompts per `task_select` record answered greedily under the record's adapter and checked by its
    # family's rule (`training.compliance`), logged as `heldout_task_select_comply` (0: not asked).
    # The losses are teacher-forced on replies we built; compliance is what the task targets count
    heldout_task_comply: int = 0
    task_comply_tokens: int = 160  # as `vllm-d2l eval --tasks`: end-placed rules come after the reply
    # probes (held-out sources scored apart, `trainer.PROBES`) that also count in the choice of the
    # best snapshot: each adds weight x its loss with the own adapter to the score, or, named with
    # its statistic ("select_exact", "task_select_comply"), weight x that (a negative weight for a share to raise). `task_short`:
    # the task hold-out's short questions' answers alone; the overall loss can improve while the
    # answers go (3300 -> 3800 scored 0.785 -> 0.734 overall but 0.439 -> 0.529 on the short
    # questions, and the QA check's answers kept fell from 88 to 74 %). `unseen`: facts of
    # relations never trained on (`heldout_unseen`). `task_select`: `heldout_task_select`'s records.
    probe_weights: dict[str, float] = field(default_factory=dict)
    task_replies: str | None = None  # the base model's replies the task targets rewrite (None: packaged)
    task_families: list[str] = field(default_factory=list)  # restrict the "tasks" source (empty: all training families)
    task_composed_wordings: bool = False  # most task records worded by `datasets.tasks.composed_wordings`
    task_open_params: bool = False  # half the streamed phrases, words and JSON keys composed (`datasets.tasks`)
    task_wide_wordings: bool = False  # streamed composed wordings from the wide grammar (`datasets.tasks`)
    # Also train the extra families (`datasets.tasks.EXTRA_FAMILIES`: quotes, tags, a heading, a line
    # prefix, a separator, no commas, bold, a summary line) in the stream: fourteen training rules
    # left held-out families at 14 % against 51 % for held-out wordings, and more kinds of rule
    # should help the reader transfer. Off keeps the stream byte for byte as before; the task
    # hold-out keeps the original families either way, so its curve reads across the switch.
    task_extra_families: bool = False
    # some composed openings and sign-offs are near misses of stock phrases (`datasets.tasks._near_miss`)
    task_near_miss: bool = False
    # some composed openings and sign-offs are free word sequences (`datasets.tasks._free_phrase`)
    task_free_phrases: bool = False
    # in a composed wording, each word the thesaurus knows is swapped for a synonym with this
    # probability (`datasets.synonyms.respell`; 0: off, the stream as before)
    task_synonyms: float = 0.0
    # a word to include goes into one of several frames, before or after the reply
    # (`datasets.tasks.INCLUDE_FRAMES`), not always "Word of the day: ..." first
    task_include_frames: bool = False
    # each odd streamed record is its even neighbour's minimal pair (`datasets.tasks.CONTRASTS`):
    # the same values and prompts under the rule that differs from it in one respect
    task_pairs: bool = False
    # lists labelled as the description shows ("(i), (ii), (iii)", "A. B. C.") join the stream
    # (`datasets.tasks.LABELLED`): the marker is read and continued, not always "a)"
    task_labels: bool = False
    # a word limit's records draw only replies whose rewrite keeps whole sentences or the short
    # answer (`datasets.tasks._whole_within`), never one cut mid-sentence at the limit: 15 % of the
    # limit's targets were such cuts, and the adapters stopped after a word or three under any
    # limit ("The capital of France?" under 12 words: "Le.")
    task_whole_limits: bool = False
    # streamed values (words to include, JSON keys, phrases, headings, tags) are composed three times
    # in four (half before), and half their open words come from 60,000 dictionary words
    # (`datasets.wide_words`) rather than 189 nouns, so a value cannot be guessed from a learnt set
    # and must be read; the rest of each record is as without it. Off: the stream as before
    task_wide_words: bool = False
    # the streamed records' short questions come from 297 rather than 122
    # (`datasets.short_questions.more_questions`): the adapters kept the answers of the questions
    # they trained on and changed others'. Off: the stream as before; the hold-out never has them
    task_more_questions: bool = False
    # this share of streamed openings and sign-offs is a single word ("Indeed.", "Lantern!"), and
    # with `task_pairs` such a record's partner is a one-word reply on the same prompts
    # (`datasets.tasks._word_phrase`): every training phrase had two words or more, and told to open
    # with "Certainly." the adapters replied "Yes." and stopped. 0: the stream as before
    task_word_phrases: float = 0.0
    # the records whose target for a short question is its answer alone (one word, a word limit)
    # draw only questions the base model's reply answers right (`datasets.tasks.knows_answer`): the
    # others asked the adapter for facts the model lacks, and it learnt to name any plausible word
    # ("Genealogy." for the capital of France). Off: the stream as before
    task_known_answers: bool = False
    # this share of streamed descriptions is a plain wording (`datasets.plain_wordings`: "Use bullet
    # points in every reply.", "Round off with "X"."), verbs shared by many families and each
    # rule named by its own nouns: the adapters read "Use bullets." and "Finish with "X"" as no
    # rule at all, keyed on verbs the grammar gave one family each. 0: the stream as before
    task_plain_wordings: float = 0.0
    # with `task_pairs`, a family without a minimal pair is paired with a description that asks
    # for nothing, its targets the base model's own replies (`datasets.tasks.no_rule`), rather
    # than with a copy of itself: every adapter's always-on block changed answers on its own
    task_null_pairs: bool = False
    # this share of streamed openings and sign-offs is a stock exclamation with a long word swapped
    # in ("Great balls of anchovies!"; `datasets.tasks._exclamation`): a held-out "Holy guacamole!"
    # came out as "Holy gazap!". 0: the stream as before
    task_exclamations: float = 0.0
    # in this share of streamed JSON records one key is a stub, one token that longer words begin
    # with ("head", "access"; `datasets.tasks.stub_words`): a held-out key "text" came out as
    # "texture". 0: the stream as before
    task_stub_keys: float = 0.0
    # with `task_pairs`, this share of the partners of a rule that can be forbidden is its negation
    # ("Never reply with bullet points."; `datasets.tasks.negated`), the base model's replies as
    # targets: told "Do not use bullet points." the adapters wrote bullet lists. 0: the stream as before
    task_negations: float = 0.0
    # this share of streamed records of a rule that can be forbidden asks for it through a "not"
    # ("Don't forget to ...", "Don't write in title case; answer in all caps instead.";
    # `datasets.tasks.affirmed`), so that a negation is told apart by what its "not" covers. 0: as before
    task_affirmations: float = 0.0
    # this share of the other streamed descriptions of a rule loses one word (`datasets.tasks.dropped_word`;
    # never a value or a word of a negation), so that each word of a rule's name carries it. 0: as before
    task_dropout: float = 0.0
    # a word to avoid leaves the target's sentence starts capitalised and its line breaks in place
    # (`datasets.tasks._avoid_comply`), not "capital of France is Paris." in one paragraph; off: as before
    task_avoid_tidy: bool = False
    # this share of streamed openings and sign-offs has a number in it ("Back at 5, Ada!"), and this
    # share of streamed descriptions a sentence with a number that asks nothing ("The shop opens at
    # 9."; `datasets.tasks.with_fact`): a limit's were the only digits, and "steps: 1., 2., 3." was
    # read as "keep it short". 0: the stream as before
    task_digits: float = 0.0
    # a word limit's short question whose reply has no whole sentence that fits is answered with the
    # reply cut just after it names the answer ("The language spoken in Mexico is Spanish."), where
    # that fits, rather than the bare answer (`datasets.tasks.answer_cut`); off: as before
    task_answer_cuts: bool = False
    # with `task_labels`, half the labelled lists' styles are a counter in a wrapping of their own
    # ("<I>", "§α"; `datasets.tasks._open_style`): with fourteen styles the adapters wrote the nearest
    # trained style for any other. off: as before
    task_open_labels: bool = False
    # with task_open_labels, this share of the open styles counts from another Latin letter ("k), l),
    # m)"), so that only the description says where a list starts (`datasets.tasks._SHIFT_STARTS`)
    task_shifted_labels: float = 0.0
    # with task_open_labels, this share of the open styles is four to six marks in no order ("k), q),
    # b), m)", "[kiwi], [ledger], …"), all in the description (`datasets.tasks._sequence_marks`): a
    # first mark no counter gives. 0: as before
    task_sequence_labels: float = 0.0
    # this share of the line-prefix records marks its lines with a prefix of its own (a symbol, a
    # word in a wrapping, a run of punctuation; `datasets.tasks._open_prefix`), thousands where the
    # pool has eight, so that only copying the description writes it. 0: as before
    task_open_prefixes: float = 0.0
    # this share of the stream's family draws follows each family's running miss rate on its edit
    # tokens, the rest uniform (`training.balance`: a rule learnt takes fewer records than one still
    # missed); `task_balance_decay` is the rate's per-observation decay. 0: every family equally
    task_balance: float = 0.0
    task_balance_decay: float = 0.98
    # this share of streamed descriptions is set among a persona and courtesies that ask for
    # nothing (`datasets.tasks.in_context`); 0: the stream as before
    task_context: float = 0.0
    # with `edits`, a task record's KL rows match the base model moved this many times as far as the
    # description before the question moves it (`objectives.guided_topk`); 0: the bare base model
    task_teacher_guidance: float = 0.0
    # the stream's "instructions" records (`datasets.instructions`): free behaviour instructions with
    # the base model's own replies, scored by KL alone to the base model moved this many times as far
    # as the instruction before the question moves it (1: the model told the instruction; at 2 its
    # first token often echoes the instruction's first word, "Use" for "Use emojis.")
    instruction_guidance: float = 1.0
    holdout_genres: list[str] = field(default_factory=list)  # never seen in training
    jsonl: list[str] = field(default_factory=list)  # extra {"text","qa"} files
    # An unbounded stream of fresh records instead of a fixed set: {source: weight}, sources
    # "synthetic" (template genres minus the hold-out), "realistic" (varied everyday documents,
    # minus their own hold-out kinds), "cloze" (questions about public-domain text), "needle"
    # (a few invented facts hidden in public-domain prose, asked about) and "tasks"
    # (task descriptions whose answers are base replies rewritten to follow them). Every step
    # draws new documents, so nothing is memorised by repetition.
    stream: dict = field(default_factory=dict)
    # corpus sources (`datasets.corpora`) the run's prose must come from: it refuses to start
    # without them rather than train and score on whatever text the machine has
    corpora: list[str] = field(default_factory=list)
    stream_seed: int | None = None  # None: `seed`; another value draws other documents, same hold-out
    # share of pooled values (names, places, objects, colours, ...) in streamed synthetic, realistic
    # and needle records drawn from an open vocabulary instead (see `datasets.values.OpenValues`)
    open_values: float = 0.0
    # share of streamed needle facts from relations composed of parts (`datasets.relations`) rather
    # than the sixteen fixed templates
    needle_composed: float = 0.0
    # composed facts also draw the attributes with ordinary-word answers (`relations.EVERYDAY`)
    needle_everyday: bool = False
    # streamed realistic records also draw `realistic.EVERYDAY_KINDS` (house notes, site sheets, field
    # diaries, club bulletins, maintenance reports): answers mostly ordinary words and number words,
    # several of one type per document, the answers the adapters get wrong most (often with another
    # fact's value of the same type); off keeps the realistic stream's records as they were
    realistic_everyday: bool = False
    max_questions: int = 4  # per document per step
    # Weight in the cross-entropy of questions whose answer is a common word or phrase (no digit,
    # lower case: "loading bay", "windowsill", "fish"): the model's own guess competes with the
    # document there ("blue" for a flag stated brown), and greedy answers of that kind were the
    # weakest on every evaluation (30 % on held-out genres against 94 % for numbers at step 10400).
    # At 3x over 400 steps (examples/ablations/train_common_answers.yaml) it did not make them
    # answered more often; off in the document run
    common_answer_weight: float = 1.0
    # Gold answers tokenized with a leading space, as the value stands in the document's sentence
    # (" Basil", " Qu"+"ill") rather than as a reply's first word ("Bas"+"il", "Qu"+"ill"): the
    # adapter's read of the document then copies the very tokens it stored. The replies start with
    # a space the client sees; cross-entropy only (the teacher's targets are not respelt)
    answer_space: bool = False
    # objectives
    kl_topk: int = 16
    kl_weight: float = 1.0
    ce_weight: float = 0.5  # cross-entropy on the gold answer (the teacher is weak)
    # Task mode: the teacher is the base model without the text; cross-entropy only where the
    # target departs from its first choice, KL to it (`kl_weight`) elsewhere (`objectives`)
    edits: bool = False
    # KL over the teacher's top-k plus one bucket for every other token, so that probability the
    # adapter moves off the teacher's candidates is paid for (`objectives.topk_kl`); off: both
    # renormalised over the k tokens, as the task run was trained to step 3325
    kl_tail: bool = False
    # Minimal pairs: where two records' targets for one prompt part, each adapter is asked to prefer
    # its own token to the other's by `pair_margin` nats, weighed by `pair_weight` (0: off;
    # `objectives.pair_margin_loss` says why). Training batches only: the hold-out stays comparable
    pair_weight: float = 0.0
    pair_margin: float = 1.0
    # Edits decided greedily: at each edit the adapter is asked to prefer the target token to the
    # base model's first choice there by `pair_margin` nats, weighed by `edit_margin_weight` (0: off;
    # `objectives.edit_margin_loss` says why). Training batches only, as the pair term
    edit_margin_weight: float = 0.0
    # With edits: the mean squared size of the adapter's updates to the residual stream where the
    # reply is the base model's own, weighed by `delta_weight` (0: off; `objectives.batch_loss` says
    # why). Training batches only, as the pair term
    delta_weight: float = 0.0
    pretrain_prob: float = 0.0  # share of steps that use the reconstruction objective
    reconstruct_tokens: int = 48
    # Plain-text corpora (names in `datasets.corpora`) whose passages replace the training document
    # whenever a reconstruction example is drawn; empty: reconstruct the training document itself.
    pretrain_sources: list[str] = field(default_factory=list)
    pretrain_passages: int = 2000  # passages of 64..256 tokens drawn once from those corpora
    max_chunks: int = 4  # documents are cut into 1..max_chunks chunks (chunk-aware training)
    # Read each chunk after a document's first behind the `hypernet.chunk_overlap` tokens before it
    # (encoded, not stored), in training and in the hold-out: the way the generator reads documents
    # longer than a chunk. Off: chunks are read alone, and the generator's context is never trained on
    train_overlap: bool = False
    # Cut the documents of `heldout_files` as the generator cuts them (one chunk up to
    # `chunk_tokens`), not into 1..max_chunks random pieces: those documents are 130-250 tokens, and
    # a random cut scores a reading that serving never does
    files_as_read: bool = False
    l1_weight: float = 0.0  # penalty on the generated B factors
    # optimisation
    steps: int = 2000
    batch_docs: int = 4
    lr: float = 3e-4
    lr_schedule: str = "cosine"  # "cosine" (to 10 % at `steps`) or "constant" after warm-up (open-ended runs)
    # A constant run's cool-down branch (lr_schedule "cooldown"): the rate falls linearly from `lr`
    # at step `cooldown_from` to `lr * cooldown_floor` over `cooldown_steps`, then stays there.
    # Averaging out the step-to-step noise of 4-document batches is what a falling rate buys; the
    # constant run goes on from its own checkpoint, so the branch costs no progress.
    cooldown_from: int = 0
    cooldown_steps: int = 300
    cooldown_floor: float = 0.1
    # A running average of the weights (`training.averaging`), decay per step (0: none). Each
    # evaluation scores the average beside the weights (logged as `avg_heldout_*`), and the better
    # of the two by the hold-out score becomes `best/`; the run itself trains the weights as before.
    ema_decay: float = 0.0
    bias_lr_mult: float = 1.0  # the always-on block's rate, relative to lr
    value_lr_mult: float = 1.0  # the token kind's value maps' rate, relative to lr
    # `value_embed`'s map E, relative to lr (None: as the value maps). E starts at zero in a branch
    # whose V has had thousands of steps; at V's rate it reached a tenth of V's size in 100 steps.
    embed_value_lr_mult: float | None = None
    ridge_lr_mult: float = 1.0  # the token kind's whitening strengths' rate (memory_read: ridge)
    # the copy path's gain (`hypernet.pointer_rank`), relative to lr: one number that starts at zero,
    # which Adam moves by about the rate a step, so at the base rate the path would take thousands of
    # steps to open (a matched state raises its token by gain * sqrt(pointer_rank) nats); the weights
    # of `hypernet.pointer_variants`, three numbers that start at zero too, train at the same rate
    pointer_gain_lr_mult: float = 30.0
    # the copy path's key maps of `hypernet.pointer_embed` and `pointer_ahead`, relative to lr: they
    # start at zero beside a trained P whose entries are about 0.03, which the base rate (3e-4 a
    # step) reaches in 100 steps
    pointer_embed_lr_mult: float = 1.0
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    # The frozen model's dtype. float32 is faster on CPUs without native bf16 matmuls (measured on
    # a Xeon without AMX: a forward of 8 x 229 tokens 3.7 s in fp32 against 5.8 s in bf16).
    dtype: str = "float32"
    device: str = "cpu"  # "cuda" on a GPU machine (use dtype bfloat16 there)
    # Answers in one forward pass, the teacher's and the student's, grouped by length. On a CPU the
    # cost is the tokens, padding included, so a few a pass (a one-pass teacher took 48 s of a step
    # of 16 descriptions, in fours 20 s); on a GPU the cost is the launches of each pass, so the
    # whole batch (`examples/train_tasks_gpu.yaml`). The results do not depend on it.
    pass_rows: int = 4
    # Replies whose bare teacher's top-k and states (`Example.lower`) are kept, the least recently
    # used dropped first. The task stream draws its replies from about 400 prompts and rewrites
    # many of them the same way (capitals, bullets, one word: rules without values), so about half
    # of a step's replies had been taught before within 200 steps. At most about 0.3 MB each in
    # fp32; 0: none kept.
    teacher_replies: int = 6000
    # bookkeeping
    log_every: int = 10
    eval_every: int = 200
    # Score the hold-out in a process of its own (`training.scoring`), on another core, while training
    # goes on: the task run's evaluations took a fifth of its wall clock on one core. The rows and the
    # best snapshot are the ones the trainer would write; they land in the log a few steps later.
    eval_async: bool = False
    # The hold-out is scored in batches of this many records whatever `batch_docs` is: each figure
    # is a mean of per-batch means, which moves with the batching (the task snapshot 8992 scored
    # 0.597 in batches of 4 and 0.519 in batches of 16, the same weights), so rows compare only at
    # one size. 4 is what every run used before the task run went to 16 a step.
    eval_batch_docs: int = 4
    save_every: int = 100
    max_minutes: float | None = None  # stop (after saving) when the wall clock runs out

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """A YAML or JSON config. `extends: FILE` (relative to this file) starts from another
        config's fields and overrides them, so a branch states only what it changes."""
        raw = _read_fields(Path(path))
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown training config fields {sorted(unknown)}")
        return cls(**raw)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _read_fields(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config file's fields, with those of the file it `extends` beneath them."""
    path = path.resolve()
    if path in seen:
        raise ValueError(f"{path}: `extends` loops back to itself")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml
        raw = yaml.safe_load(text) or {}
    else:
        raw = json.loads(text)
    base = raw.pop("extends", None)
    return {**_read_fields(path.parent / base, (*seen, path)), **raw} if base else raw
