"""Quickstart: read documents into adapters on a running server, then ask each one questions.

    vllm-d2l serve --port 8000          # in another terminal (the default model and hypernetwork)
    python examples/quickstart.py       # or: python examples/quickstart.py --start (starts its own)

Each document becomes an adapter id (`doc-...`) that goes in the `model` field; the same
document uploaded again returns the same id at once. The answers without the document come from
the base model, for comparison. Only the `openai` client is needed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
from openai import OpenAI

HERE = Path(__file__).resolve().parent
QUESTIONS = {
    "harbor_memo.txt": ["Which floor does the Harbor Street office move to?",
                        "Who should I ask about the move?"],
    "glacier_trail.txt": ["How long is the Glacier Lake loop?",
                          "Why is Glacier Lake green?"],
}


def upload(client: OpenAI, path: Path) -> dict:
    """POST /v1/documents through the openai client's generic request method."""
    resp = client.post("/documents", body={"text": path.read_text(), "name": path.stem}, cast_to=httpx.Response)
    return resp.json()


def ask(client: OpenAI, model: str, question: str, max_tokens: int = 48) -> str:
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                       max_tokens=max_tokens, temperature=0)
    return (r.choices[0].message.content or "").strip()


def run(base_url: str, max_tokens: int = 48) -> list[dict]:
    client = OpenAI(base_url=base_url.rstrip("/") + "/v1", api_key="unused-unless-the-server-has-an-api-key")
    base = client.models.list().data[0].id
    report = []
    for name, questions in QUESTIONS.items():
        t0 = time.perf_counter()
        doc = upload(client, HERE / name)
        seconds = time.perf_counter() - t0
        print(f"{name}: {doc['id']}  tokens={doc['tokens']} rank={doc['rank']} "
              f"cached={doc['cached']} ({seconds:.2f}s)")
        again = upload(client, HERE / name)
        assert again["id"] == doc["id"] and again["cached"]
        for q in questions:
            with_doc, without = ask(client, doc["id"], q, max_tokens), ask(client, base, q, max_tokens)
            print(f"  Q: {q}\n    adapter: {with_doc!r}\n    base:    {without!r}")
            report.append({"document": name, "id": doc["id"], "question": q, "adapter": with_doc, "base": without})
    print("models:", ", ".join(m.id for m in client.models.list().data))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8000")
    ap.add_argument("--start", action="store_true", help="start a small local server for the run")
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()
    if not args.start:
        run(args.base_url, args.max_tokens)
        return
    from vllm_d2l.serving.testing import ServerProcess

    with ServerProcess(["--max-model-len", "2048", "--max-num-seqs", "8"], log_path="quickstart-server.log") as srv:
        print(f"server ready in {srv.startup_seconds:.0f}s at {srv.base_url}")
        run(srv.base_url, args.max_tokens)


if __name__ == "__main__":
    main()
