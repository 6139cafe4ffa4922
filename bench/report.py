"""`results/summary.md`: the tables the README's Performance section quotes, rebuilt from the JSON
files alone (so a table can never disagree with the data next to it)."""
from __future__ import annotations

import json
from pathlib import Path

from . import results


def _f(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _s(s: dict, digits: int = 2, scale: float = 1.0) -> str:
    if not s or s.get("p50") is None:
        return "–"
    return (f"{s['p50'] * scale:.{digits}f} [{s['min'] * scale:.{digits}f}–{s['max'] * scale:.{digits}f}]"
            if len(s.get("runs", [])) > 1 else f"{s['p50'] * scale:.{digits}f}")


def _mib(b) -> str:
    if b is None:
        return "–"
    if b < 2**20:
        return f"{b / 2**10:.0f} KiB"
    return f"{b / 2**20:.1f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def _conditions(meta: dict) -> str:
    m, a, b = meta.get("machine", {}), meta.get("start", {}), meta.get("end", {})
    training = "yes" if a.get("training_running") or b.get("training_running") else "no"
    return (f"{m.get('cpu_model')} ({m.get('cpus')} cores), {a.get('time_utc')} → {b.get('time_utc')}, "
            f"load average {a.get('load_average')} → {b.get('load_average')}, training job running: {training}, "
            f"git {m.get('git_commit')}")


def adapters_table(r: dict) -> list[str]:
    lines = ["| server | arm | output tok/s | req/s | × same-server base |", "|---|---|---|---|---|"]
    for kind, srv in r["servers"].items():
        for arm, s in srv["arms"].items():
            rel = srv.get("ratios_to_base", {}).get(arm)
            lines.append(f"| {kind} | {arm} | {_s(s['output_tokens_per_s'], 1)} | {_s(s['requests_per_s'])} | "
                         f"{_s(rel) if rel else '1'} |")
    lines += ["", "| comparison | ratio (p50) |", "|---|---|"]
    lines += [f"| {k} | {_f(v)} |" for k, v in r.get("comparisons", {}).items()]
    return lines


def qa_table(r: dict) -> list[str]:
    lines = ["| arm | req/s | output tok/s | TTFT p50 (s) | TTFT p95 (s) | prompt tokens |",
             "|---|---|---|---|---|---|"]
    for arm, s in r["qa"]["arms"].items():
        lines.append(f"| {arm} | {_s(s['requests_per_s'])} | {_s(s['output_tokens_per_s'], 1)} | "
                     f"{_s(s['ttft_p50_s'], 3)} | {_s(s['ttft_p95_s'], 3)} | "
                     f"{_f(s['mean_prompt_tokens']['p50'], 0)} |")
    lines += ["", "| ratio | p50 [min–max over repeats] |", "|---|---|"]
    lines += [f"| {k} | {_s(v)} |" for k, v in r["qa"].get("ratios", {}).items()]
    return lines


def memory_table(r: dict) -> list[str]:
    lines = ["| document tokens | adapter rank | adapter | KV cache in prompt (computed) | KV reported by vLLM | "
             "KV / adapter |", "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        vllm = _mib(row.get("kv_bytes_vllm")) if row.get("kv_bytes_vllm") else (
            "(beyond window)" if row.get("computed_only") else "–")
        if row.get("kv_bytes_vllm"):
            vllm += (f" ({row['kv_blocks_used']} blocks for {row['prompt_tokens']} prompt + {row['decode_tokens']} "
                     f"decoded tokens; computed in whole blocks: {_mib(row['kv_bytes_computed_blocks'])})")
        full = row.get("adapter_full_rank")
        rank = f"{row['adapter_rank']}" + (f" (capped from {full})" if full and full > row["adapter_rank"] else "")
        lines.append(f"| {row['tokens']} | {rank} | {_mib(row['adapter_bytes'])} | {_mib(row['kv_bytes_computed'])} | "
                     f"{vllm} | {row['kv_over_adapter']:.0f}× |")
    lines.append(f"\nvLLM slot per loaded adapter (padded to rank {r['max_lora_rank']}): "
                 f"{_mib(r['rows'][0]['vllm_slot_bytes'])}; KV per token: {r['kv_bytes_per_token']} bytes ({r['dtype']}).")
    return lines


def uploads_table(r: dict) -> list[str]:
    u = r["uploads"]
    lines = ["| chats | latency p50 (s) | latency p95 (s) | TTFT p95 (s) | output tok/s |", "|---|---|---|---|---|"]
    for key, label in (("alone", "alone"), ("with_uploads", f"with uploads ({u['upload_concurrency']} uploaders, "
                                                            f"{u['upload_tokens']}-token documents)")):
        s = u[key]
        lines.append(f"| {label} | {_s(s['latency_p50_s'])} | {_s(s['latency_p95_s'])} | {_s(s['ttft_p95_s'])} | "
                     f"{_s(s['output_tokens_per_s'], 1)} |")
    lines.append(f"\nUploads completed during chats: {u['uploads']['ok']} of {u['uploads']['count']}, "
                 f"server-side internalization {_s(u['uploads']['server_seconds'])} s each.")
    lines += ["", "| document tokens | chunks | rank | internalization in the server (s) | upload round trip (s) |",
              "|---|---|---|---|---|"]
    for n, d in r["documents"].items():
        lines.append(f"| {n} | {_f(d['chunks']['p50'], 0)} | {_f(d['rank']['p50'], 0)} | {_s(d['server_seconds'])} | "
                     f"{_s(d['client_seconds'])} |")
    return lines


def store_table(r: dict) -> list[str]:
    lines = ["| request | p50 (ms) | p95 (ms) | response bytes |", "|---|---|---|---|"]
    lines += [f"| `GET /v1/{name}` | {_f(s['p50_ms'], 1)} | {_f(s['p95_ms'], 1)} | {s['bytes']:,} |"
              for name, s in r["lists"].items()]
    t, st = r["ttft"], r["startup"]
    lines += ["", "| time to first token, p50 | seconds |", "|---|---|",
              f"| base model | {_f(t['base_p50_s'], 3)} |", f"| adapter, warm | {_f(t['warm_p50_s'], 3)} |",
              f"| adapter, cold (first request after start-up, loaded from the store) | {_f(t['cold_p50_s'], 3)} |",
              f"| cold / warm | {_f(t['cold_over_warm'])}× |",
              "", f"Server start-up: empty store {_f(st['empty_s'], 1)} s, {r['adapters']:,} adapters "
              f"{_f(st['full_s'], 1)} s (difference {_f(st['difference_s'], 1)} s)."]
    return lines


def priority_table(r: dict) -> list[str]:
    lines = ["| internalization thread | chat p95 alone (s) | chat p95 with uploads (s) | with ÷ alone | "
             "uploads done | internalization in the server (s) |", "|---|---|---|---|---|---|"]
    for label, a in r["arms"].items():
        u = a["uploads"]
        lines.append(f"| {label}, nice {a['nice']} | {_s(a['alone']['latency_p95_s'])} | "
                     f"{_s(a['with_uploads']['latency_p95_s'])} | {_f(a['p95_with_over_alone'])}× | "
                     f"{u['ok']} of {u['count']} | {_s(u['server_seconds'])} |")
    return lines


def internalize_table(path: Path) -> list[str]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    lines = ["| document tokens | internalize (s) | one plain prefill (s) | ratio | peak MB internalize | "
             "peak MB prefill |", "|---|---|---|---|---|---|"]
    for row in data["rows"]:
        lines.append(f"| {row['tokens']} | {_f(row['internalize_s'])} | {_f(row['prefill_s'])} | {_f(row['ratio'])} | "
                     f"{_f(row['internalize_peak_mb'], 0)} | {_f(row['prefill_peak_mb'], 0)} |")
    return lines


def build(out_dir: Path) -> Path:
    parts = ["# Benchmark results", ""]
    sections = [("adapters", "Output throughput vs adapters in flight", adapters_table, "adapters.png"),
                ("qa", "Question answering: adapter vs document in the prompt vs base", qa_table, "qa.png"),
                ("memory", "Memory: adapter vs KV cache", memory_table, "memory.png"),
                ("uploads", "Internalization and chats under uploads", uploads_table, "uploads.png"),
                ("store", "A store of 10,000 adapters", store_table, "store.png"),
                ("priority", "Chats under uploads: internalization priority", priority_table,
                 "uploads-priority.png")]
    for name, title, table, png in sections:
        r = results.read(out_dir, name)
        if r is None:
            continue
        parts += [f"## {title}", "", f"Conditions: {_conditions(r['meta'])}", "",
                  f"Command: `{r['meta'].get('command')}`; load: {json.dumps(r['meta'].get('load'))}", ""]
        parts += table(r)
        parts += ["", f"![{title}]({png})", ""]
    intern = internalize_table(out_dir / "internalize.json")
    if intern:
        parts += ["## Internalization latency and peak memory (bench/internalize.py)", ""] + intern + [
            "", "![internalize](internalize.png)", ""]
    path = out_dir / "summary.md"
    path.write_text("\n".join(parts) + "\n")
    return path
