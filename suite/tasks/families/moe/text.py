"""Real text of each domain, shipped with Python or its packages: nothing is downloaded.

* ``english``: the prose of Python's own help topics (``pydoc_data.topics``);
* ``python``: the source of a fixed list of standard-library modules;
* ``italian``, ``spanish``, ...: the conversations of ``chatterbot-corpus`` (as lm/real-languages).

Characters are kept as written (case, digits, newlines, indentation): printable ASCII, a few
accented letters, and ``OTHER`` for the rest. Each text is cut once into a training part and a
held-out part; windows are drawn with a seeded generator, vectorised over the batch.
"""

from __future__ import annotations

import functools
import importlib
import inspect

import numpy as np
import torch
from torch import Tensor

from suite.tasks.columns import fingerprint

ACCENTED = "àáâäçèéêëìíîïñòóôöùúûüß¿¡"
OTHER = "\x7f"
SYMBOLS = "\n" + "".join(chr(c) for c in range(32, 127)) + ACCENTED + OTHER
INDEX = {c: i for i, c in enumerate(SYMBOLS)}
VOCAB = len(SYMBOLS)
STDLIB = (
    "textwrap", "string", "difflib", "heapq", "bisect", "fractions", "statistics", "shlex",
    "calendar", "colorsys", "fnmatch", "glob", "graphlib", "keyword", "numbers", "operator",
    "pprint", "queue", "sched", "secrets", "tabnanny", "timeit", "tokenize", "uuid",
)  # fmt: skip


@functools.cache
def domain_text(domain: str) -> str:
    if domain == "english":
        from pydoc_data.topics import topics

        return "\n".join(topics[key] for key in sorted(topics))
    if domain == "python":
        return "\n".join(inspect.getsource(importlib.import_module(m)) for m in STDLIB)
    from suite.tasks.families.lm.corpus import language_text

    text = language_text(domain)
    return text[:1].upper() + text[1:]


def encode(text: str) -> np.ndarray:
    other = INDEX[OTHER]
    return np.fromiter((INDEX.get(c, other) for c in text), dtype=np.int64, count=len(text))


@functools.cache
def domain_codes(domain: str, train_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(training part, held-out part) of a domain's text, as symbol indices."""
    codes = encode(domain_text(domain))
    cut = int(len(codes) * train_share)
    return codes[:cut], codes[cut:]


def texts_fingerprint(domains: tuple[str, ...], train_share: float) -> str:
    return fingerprint({d: np.concatenate(domain_codes(d, train_share)) for d in domains})


def windows(
    domains: tuple[str, ...],
    train_share: float,
    part: int,
    batch: int,
    seq_len: int,
    switch_at: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(tokens (B, seq_len), second domain's index (B,)): ``switch_at`` characters of
    ``domains[0]``, then the rest from one of the others drawn per sequence, each window at a
    random offset of its text's ``part`` (0: training, 1: held-out)."""
    second = torch.randint(1, len(domains), (batch,), generator=generator)
    out = torch.empty(batch, seq_len, dtype=torch.long)
    out[:, :switch_at] = _draw(
        domain_codes(domains[0], train_share)[part], batch, switch_at, generator
    )
    for d in range(1, len(domains)):  # every domain draws, used or not: the stream stays fixed
        rows = (second == d).nonzero().flatten()
        codes = domain_codes(domains[d], train_share)[part]
        drawn = _draw(codes, batch, seq_len - switch_at, generator)
        out[rows, switch_at:] = drawn[rows]
    return out, second


def _draw(codes: np.ndarray, rows: int, length: int, generator: torch.Generator) -> Tensor:
    if len(codes) <= length:
        raise ValueError(f"a text of {len(codes)} characters cannot give windows of {length}")
    starts = torch.randint(0, len(codes) - length, (rows,), generator=generator)
    index = starts[:, None] + torch.arange(length)[None, :]
    return torch.from_numpy(codes)[index]
