"""Draw the task families the student gets wrong more often than those it has learnt.

The stream drew every training family equally, and a step of 16 descriptions sees each of the
23 families less than once: a rule the adapters already write ("Respond with one word.") took as
many records as one they still miss (upper case, a list labelled as the description shows it).
Each family keeps a running miss rate, the share of its edit tokens (where the rewritten reply
departs from the base model's first choice) that are not the student's first choice, and the
stream draws a family with probability

    p(f) = (1 - share) / N + share * miss(f) / sum of misses

so that `share` of the draws follow the misses and the rest stay uniform. No family is starved: one
that is learnt falls to (1 - share) of the uniform share, never to none. The miss rates are saved
in the run's checkpoint, so a resumed run draws what an uninterrupted one would.
"""
from __future__ import annotations


class FamilyBalance:
    def __init__(self, families: list[str], share: float, decay: float = 0.98):
        if not families:
            raise ValueError("family balance needs at least one family")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"family balance share must be in [0, 1], got {share}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"family balance decay must be in (0, 1), got {decay}")
        self.families, self.share, self.decay = list(families), share, decay
        # per family: the decayed sum of its misses from zero and how many there were; a family
        # enters at its first observation
        self.raw: dict[str, float] = {}
        self.count: dict[str, int] = {}

    @property
    def miss(self) -> dict[str, float]:
        """Each observed family's running miss rate, corrected for the zero it started from (as
        Adam's moments are): a weighted mean of its observations however few, where starting at the
        first one let that one example stand for about 1 / (1 - decay) of them."""
        return {f: r / (1 - self.decay ** self.count[f]) for f, r in self.raw.items()}

    def update(self, observed: list[tuple[str, float]]) -> None:
        """Fold in (family, miss rate) pairs, one per example that had edit tokens; families not
        drawn from (a minimal pair's partner rule, a negation) are ignored."""
        for family, miss in observed:
            if family not in self.families:
                continue
            self.raw[family] = self.decay * self.raw.get(family, 0.0) + (1 - self.decay) * miss
            self.count[family] = self.count.get(family, 0) + 1

    def weights(self) -> dict[str, float]:
        """Draw probabilities of every family; a family not observed yet counts as the mean miss."""
        n = len(self.families)
        if not self.miss:
            return {f: 1 / n for f in self.families}
        mean = sum(self.miss.values()) / len(self.miss)
        misses = {f: self.miss.get(f, mean) for f in self.families}
        total = sum(misses.values())
        if total <= 0:
            return {f: 1 / n for f in self.families}
        return {f: (1 - self.share) / n + self.share * m / total for f, m in misses.items()}

    def state(self) -> dict:
        return {"raw": dict(self.raw), "count": dict(self.count)}

    def load(self, state: dict) -> None:
        """Restore `state()`; a state saved before the correction (rates alone) counts each rate as
        long settled."""
        if "raw" in state:
            self.raw = {f: float(r) for f, r in state["raw"].items() if f in self.families}
            self.count = {f: int(state["count"][f]) for f in self.raw}
        else:
            self.raw = {f: float(m) for f, m in state.get("miss", {}).items() if f in self.families}
            self.count = {f: 10_000 for f in self.raw}
