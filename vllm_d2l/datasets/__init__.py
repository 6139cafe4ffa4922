"""Offline training and evaluation data: synthetic fact documents, plain-text corpora, user JSONL."""
