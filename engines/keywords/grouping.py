"""Average-linkage grouping of term vectors: a term belongs to a group when it is, on average, alike
enough to the members of it, so that one term alike to two topics cannot chain them together."""
from __future__ import annotations

from .space import Vector, combined, dot

CORE = 25  # a group's first members, against which a newcomer is checked one by one


class Profile:
    """A group as the sum of its members' unit vectors (its mean similarity to a vector in one product),
    and its first members."""

    def __init__(self, members: list[Vector]) -> None:
        self.total = combined(members)
        self.size = len(members)
        self.core = members[:CORE]

    def similarity(self, vector: Vector) -> float:
        """The mean cosine between the vector and the group's members."""
        return dot(vector, self.total) / self.size if self.size else 0.0

    def welcomes(self, vector: Vector, threshold: float) -> bool:
        """Whether the vector is alike to more than half of the group's first members: a mean pulled up
        by a few members that straddle two topics is not enough."""
        return 2 * sum(dot(vector, member) >= threshold for member in self.core) > len(self.core)

    def add(self, vector: Vector) -> None:
        for feature, value in vector.items():
            self.total[feature] = self.total.get(feature, 0.0) + value
        self.size += 1
        if len(self.core) < CORE:
            self.core.append(vector)


def closest(vector: Vector, profiles: dict[str, Profile], threshold: float) -> str | None:
    """The group the vector is most alike to on average, if that mean is at least `threshold` and the
    vector is alike to more than half of the group's first members."""
    scores = {key: profile.similarity(vector) for key, profile in profiles.items()}
    best = max(scores, key=lambda key: scores[key], default=None)
    if best is None or scores[best] < threshold or not profiles[best].welcomes(vector, threshold):
        return None
    return best


def agglomerate(vectors: list[Vector], threshold: float) -> list[list[int]]:
    """Groups of indices: the two most alike groups merge (mean pairwise cosine; O(n³), for n up to a
    few hundred) until no two are alike by `threshold`; each group lists its indices in ascending order."""
    groups = {i: [i] for i in range(len(vectors))}
    alike = {(i, j): dot(vectors[i], vectors[j]) for i in groups for j in groups if i < j}
    while alike:
        (i, j), best = max(alike.items(), key=lambda item: item[1])
        if best < threshold:
            break
        _merge(alike, groups, i, j)
    return [sorted(members) for members in groups.values()]


def _merge(alike: dict[tuple[int, int], float], groups: dict[int, list[int]], i: int, j: int) -> None:
    """Fold group j into group i; the merged group's similarity to the others is the size-weighted mean."""
    ni, nj = len(groups[i]), len(groups[j])
    del alike[(i, j)]
    for k in groups:
        if k not in (i, j):
            a, b = alike.pop(_pair(i, k)), alike.pop(_pair(j, k))
            alike[_pair(i, k)] = (ni * a + nj * b) / (ni + nj)
    groups[i].extend(groups.pop(j))


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)
