"""Benchmarks that drive a real server (or the kernels) and write `results/*.json` plus plots.

`python -m bench ...` (or `vllm-d2l bench ...`) runs the server benchmarks; `bench/internalize.py`,
`bench/cpu_lora_ops.py` and `bench/gpu_kernels.py` are standalone scripts for one component each.
"""
