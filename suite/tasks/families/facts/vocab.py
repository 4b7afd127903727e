"""The facts family's vocabulary: special tokens, then entity, value and filler words.

Entities and values are disjoint ranges (chance on a query is 1 / n_values); fillers are the
neutral words of gaps. The multi-query task (MQAR) draws keys and values from the lower and upper
halves of the non-special vocabulary, which these ranges already are.
"""

from __future__ import annotations

from dataclasses import dataclass

PAD, ASK = range(2)
N_SPECIAL = 2
IGNORE = -100  # the label of positions that are not scored


@dataclass(frozen=True)
class Vocab:
    n_entities: int
    n_values: int
    n_fillers: int
    n_templates: int = 0  # template words (the templated task), after the fillers

    @property
    def entity0(self) -> int:
        return N_SPECIAL

    @property
    def value0(self) -> int:
        return N_SPECIAL + self.n_entities

    @property
    def filler0(self) -> int:
        return self.value0 + self.n_values

    @property
    def template0(self) -> int:
        return self.filler0 + self.n_fillers

    @property
    def size(self) -> int:
        return self.template0 + self.n_templates
