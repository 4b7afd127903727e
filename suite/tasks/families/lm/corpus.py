"""Real text per language from the PyPI package ``chatterbot-corpus`` (YAML conversations, BSD),
read from the installed package: no download at run time.

Every utterance of a language's files, lower-cased, becomes one long text; characters outside
``ALPHABET`` become ``OTHER``. Each text is split once into a training part (the first
``train_share``) and a held-out part, so the metrics are taken on text no batch trained on. The
texts are a ``datasets.Dataset`` whose content fingerprint goes into every record.
"""

from __future__ import annotations

import functools
from importlib import resources

import datasets
import numpy as np
import pyarrow as pa
import yaml

from suite.tasks.columns import fingerprint

ALPHABET = " abcdefghijklmnopqrstuvwxyzàáâãäçèéêëìíîïñòóôõöùúûüß'.,;:?!-¿¡"
OTHER = "#"
SYMBOLS = ALPHABET + OTHER
INDEX = {c: i for i, c in enumerate(SYMBOLS)}
QUOTES = str.maketrans({"’": "'", "‘": "'", "“": None, "”": None, "«": None, "»": None})


def _utterances(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [u for item in node for u in _utterances(item)]
    return []


@functools.cache
def language_text(language: str) -> str:
    folder = resources.files("chatterbot_corpus") / "data" / language
    if not folder.is_dir():
        known = sorted(p.name for p in (resources.files("chatterbot_corpus") / "data").iterdir())
        raise ValueError(f"chatterbot-corpus has no language '{language}'; it has {known}")
    lines = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yml"):
            doc = yaml.safe_load(item.read_text(encoding="utf-8")) or {}
            lines += _utterances(doc.get("conversations", []))
    text = " ".join(" ".join(line.split()) for line in lines).lower()
    return text.translate(QUOTES)


def encode(text: str) -> np.ndarray:
    other = INDEX[OTHER]
    return np.fromiter((INDEX.get(c, other) for c in text), dtype=np.int64, count=len(text))


@functools.cache
def language_codes(language: str, train_share: float) -> tuple[np.ndarray, np.ndarray]:
    """The language's text as symbol indices: (training part, held-out part)."""
    codes = encode(language_text(language))
    cut = int(len(codes) * train_share)
    return codes[:cut], codes[cut:]


def corpus_dataset(languages: tuple[str, ...], train_share: float) -> datasets.Dataset:
    """The texts as a Dataset (one row per language and part), fingerprinted by content."""
    rows = {"language": [], "part": [], "text": []}
    for lang in languages:
        text = language_text(lang)
        cut = int(len(text) * train_share)
        for part, chunk in (("train", text[:cut]), ("held-out", text[cut:])):
            rows["language"].append(lang)
            rows["part"].append(part)
            rows["text"].append(chunk)
    codes = {lang: encode(language_text(lang)) for lang in languages}
    table = datasets.table.InMemoryTable(pa.table(rows))
    info = datasets.DatasetInfo(description="chatterbot-corpus conversations, lower-cased")
    return datasets.Dataset(table, info=info, fingerprint=fingerprint(codes))
