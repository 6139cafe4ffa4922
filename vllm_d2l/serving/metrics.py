"""Prometheus metrics for document adapters, exposed on vLLM's own `/metrics`.

Label cardinality is bounded by design. Adapter ids are content hashes: every new document is a
new id, so a per-id label would add a time series per upload, forever, and grow Prometheus'
memory without limit. Traffic is therefore labelled by *kind* only (`base`, `document`, `task`, `composite`, `other`
for adapters that are not ours), and per-document request counts are served by
`GET /v1/documents/{id}` (`"requests"`) instead. Error reasons come from a fixed list.

Objects are created once per process on import; only the API server process imports this module
(vLLM serves its default registry there).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_KINDS = ("base", "document", "task", "composite", "other")
UPLOAD_OUTCOMES = ("created", "cached", "bad_request", "too_large", "over_rank", "not_ready", "error")

INTERNALIZE_SECONDS = Histogram(
    "vllm_d2l_internalize_seconds",
    "Time to read one document into an adapter (queueing excluded).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300),
)
DOCUMENTS = Counter("vllm_d2l_documents_internalized", "Documents read into new adapters.")
TOKENS = Counter("vllm_d2l_tokens_internalized", "Tokens of documents read into new adapters.")
CACHE_HITS = Counter("vllm_d2l_cache_hits", "Uploads answered from the store without recomputing.")
UPLOADS = Counter("vllm_d2l_uploads", "POST /v1/documents and /v1/tasks by kind and outcome.", ["kind", "outcome"])
COMPRESSED = Counter("vllm_d2l_adapters_compressed",
                     "Adapters recompressed (truncated SVD) to fit --max-lora-rank.")
COMPOSED = Counter("vllm_d2l_composites_built",
                   "Composite adapters (doc-A+doc-B) built from stored adapters.")
CORRUPT = Counter("vllm_d2l_store_corrupt", "Stored adapters that failed their checksum.")
RESOLVED = Counter("vllm_d2l_resolver_loads", "Adapters reloaded from the store by the resolver.")
EVICTED = Counter("vllm_d2l_store_evictions",
                  "Adapters deleted from the store by LRU eviction (--max-stored-documents).")
DEFERRED = Counter("vllm_d2l_store_evictions_deferred",
                   "Adapters the store limit would have evicted, kept because a request on this server uses them.")
STORED = Gauge("vllm_d2l_adapters_stored", "Live adapters in the store.", multiprocess_mode="livemax")
ACTIVE = Gauge("vllm_d2l_adapters_registered",
               "Document adapters registered with this server's engine.", multiprocess_mode="livesum")
REQUESTS = Counter("vllm_d2l_requests", "Completion requests by model kind.", ["kind"])
QUEUE = Gauge("vllm_d2l_internalize_queue", "Documents waiting for or in internalization.",
              multiprocess_mode="livesum")

for _kind in REQUEST_KINDS:  # export zeros so dashboards see every series from the start
    REQUESTS.labels(kind=_kind)
UPLOAD_KINDS = ("document", "task")
for _outcome in UPLOAD_OUTCOMES:
    for _kind in UPLOAD_KINDS:
        UPLOADS.labels(kind=_kind, outcome=_outcome)
