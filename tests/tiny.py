"""Tiny random-weight Llama models and tokenizers, built in seconds, for tests that need no hub.

The tokenizer is a byte-level BPE trained on a few sentences, saved as a `PreTrainedTokenizerFast`
with a chat template, so transformers, PEFT and vLLM all load the folder as they would a real one.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "A document becomes an adapter in one forward pass.",
    "Questions and answers about memos, manuals, itineraries and reports.",
    "0123456789 !?.,;:'\"()[]{}<>-_=+*/\\|@#$%^&~`",
]


def build_tokenizer(folder: Path, vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 2048
    fast.save_pretrained(folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return fast


def build_tiny_llama(folder: Path, seed: int = 0, layers: int = 2, hidden: int = 64, intermediate: int = 128,
                     heads: int = 4, kv_heads: int = 2, vocab_size: int = 512, dtype=torch.float32,
                     max_positions: int = 2048) -> Path:
    """Write a random Llama + tokenizer folder; deterministic for a given seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder, vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=max_positions, rope_theta=10000.0, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, head_dim=hidden // heads)
    model = LlamaForCausalLM(config).to(dtype)
    with torch.no_grad():  # larger weights than the default init, so adapters visibly change outputs
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.08)
    model.save_pretrained(folder, safe_serialization=True)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["rope_theta"] = 10000.0
    cfg["torch_dtype"] = str(dtype).replace("torch.", "")
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    return folder


def build_tiny_hypernet(model_dir: Path, folder: Path, opened: bool = False, **overrides) -> Path:
    """A small hypernetwork for a tiny model. Fresh ones are exact no-ops; `opened` gives them
    random B heads so adapters change outputs (what serving tests need)."""
    from transformers import AutoConfig

    from vllm_d2l.hypernet import HypernetConfig, build

    cfg = HypernetConfig.for_base_model(AutoConfig.from_pretrained(model_dir), base_model="tiny",
                                        **{"dim": 32, "heads": 2, "latent_blocks": 1, **overrides})
    torch.manual_seed(0)
    net = build(cfg)
    if opened:
        net.open_()
    return net.save(folder)


def build_servable(root: Path, opened: bool = True, max_positions: int = 2048) -> tuple[Path, Path]:
    """(model, hypernetwork) folders a vLLM test server can load: head_dim 32, since vLLM's CPU
    attention rejects the default tiny model's 16."""
    model = build_tiny_llama(Path(root) / "model", heads=2, kv_heads=1, max_positions=max_positions)
    return model, build_tiny_hypernet(model, Path(root) / "hypernet", opened=opened)


def stacked_lora_pool(ranks: list[int], r_max: int, d_in: int, d_out: int,
                      seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random adapters at `ranks` in vLLM's stacked slot buffers, A (S, 1, r_max, d_in) and
    B (S, 1, d_out, r_max), zero past each slot's true rank (as vLLM pads them); fp32, on CPU."""
    g = torch.Generator().manual_seed(seed)
    a = torch.zeros(len(ranks), 1, r_max, d_in)
    b = torch.zeros(len(ranks), 1, d_out, r_max)
    for s, r in enumerate(ranks):
        a[s, 0, :r] = torch.randn(r, d_in, generator=g) * 0.3
        b[s, 0, :, :r] = torch.randn(d_out, r, generator=g) * 0.3
    return a, b
