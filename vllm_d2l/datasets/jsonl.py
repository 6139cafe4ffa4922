"""Users' own question sets: `{"text": ..., "qa": [{"q": ..., "a": ...}, ...]}`, one per line.

Validation names the file and line of the first bad record, because a training run or an
evaluation that fails an hour in on record 3,000 is much worse than one that refuses at once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import D2LError


class BadRecord(D2LError, ValueError):
    """A JSONL line that is not a usable document record."""


def validate_record(record: object, where: str) -> dict:
    """Return the record if it is usable; raise `BadRecord` saying what is wrong and where."""
    if not isinstance(record, dict):
        raise BadRecord(f"{where}: expected a JSON object, got {type(record).__name__}")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRecord(f"{where}: 'text' must be a non-empty string")
    qa = record.get("qa")
    if not isinstance(qa, list) or not qa:
        raise BadRecord(f"{where}: 'qa' must be a non-empty list of {{\"q\", \"a\"}} objects")
    for i, item in enumerate(qa):
        if not isinstance(item, dict):
            raise BadRecord(f"{where}: qa[{i}] must be an object with 'q' and 'a'")
        for key in ("q", "a"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise BadRecord(f"{where}: qa[{i}].{key} must be a non-empty string")
    return record


def load_jsonl(path: Path | str, limit: int | None = None) -> list[dict]:
    """Records of a JSONL file, each given an `id` (`<stem>-<line>`) when it has none."""
    path = Path(path)
    if not path.is_file():
        raise BadRecord(f"{path}: no such file")
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadRecord(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            record = validate_record(record, where)
            record.setdefault("id", f"{path.stem}-{n}")
            records.append(record)
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise BadRecord(f"{path}: no records")
    return records


# Hand-written evaluation sets shipped with the package, never for training. "handwritten": 20
# short documents (memos, manuals, minutes, itineraries, ...; 80 questions). "handwritten-b": 24
# documents of kinds the first set lacks (e-mail, FAQ, review, timetable, chat transcript, changelog,
# small ads, ...; 120 questions), written later so that one set's 80 answers are not the only word.
HANDWRITTEN_SETS = {"handwritten": Path(__file__).with_name("handwritten.jsonl"),
                    "handwritten-b": Path(__file__).with_name("handwritten_b.jsonl")}


def load_handwritten(name: str = "handwritten") -> list[dict]:
    """A bundled hand-written evaluation set by name (`HANDWRITTEN_SETS`)."""
    if name not in HANDWRITTEN_SETS:
        raise ValueError(f"no bundled set {name!r}; known: {', '.join(HANDWRITTEN_SETS)}")
    return load_jsonl(HANDWRITTEN_SETS[name])


def write_records(records: list[dict], out: str) -> None:
    """JSONL to a file, or to stdout when `out` is '-'."""
    import sys

    if out == "-":
        for r in records:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {out}", file=sys.stderr)


def name_list(arg: str | None, held_out: Sequence[str]) -> list[str] | None:
    """The generators' CLI lists: comma-separated names, 'default' for their held-out ones, or None."""
    if not arg:
        return None
    if arg == "default":
        return list(held_out)
    return [n.strip() for n in arg.split(",") if n.strip()]


def choose_names(known: Sequence[str], chosen: Iterable[str] | None, held_out: Iterable[str], what: str) -> list[str]:
    """`chosen` (default: all `known`) minus `held_out`, refusing unknown names and an empty result."""
    picked = list(chosen) if chosen else list(known)
    held = set(held_out)
    unknown = sorted((set(picked) | held) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {', '.join(known)}")
    left = [n for n in picked if n not in held]
    if not left:
        raise ValueError(f"no {what} left after the hold-out")
    return left


def generate_to(parser, make, out: str) -> int:
    """The generators' CLI tail: records from `make()`, a bad argument as the parser's error, JSONL out."""
    try:
        records = make()
    except ValueError as e:
        parser.error(str(e))
    write_records(records, out)
    return 0
