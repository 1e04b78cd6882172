"""Blend recipes: "human:60 fox:20 anime:10 pony:10" → a normalised, checked recipe.

Everything that would make a blend fail or produce garbage is refused here, before anything is queued:
weights that don't add up to 100, names that aren't models, and models that can't be averaged (different
architectures, or different families — reference §5.3: unrelated networks have no neuron correspondence).
A family is the operator's statement that its models share an ancestor; when the files' own lineage disagrees,
the blend goes ahead with a warning in its caption (lineage_warning).
"""
from __future__ import annotations

import re

from tasks.specs import InputError

Recipe = tuple[tuple[str, int], ...]
TOKEN = re.compile(r"^([^:\s]+):([^:\s]*)$")
EXAMPLE = "human:60 fox:20 anime:10 pony:10"


def parse_weights(text: str) -> Recipe:
    """Syntax only: (name, percent) pairs in the user's order, zero weights kept."""
    tokens = str(text or "").replace(",", " ").split()
    if not tokens:
        raise InputError(f"the blend recipe is empty; give models and percentages like {EXAMPLE}")
    pairs, seen = [], set()
    for token in tokens:
        m = TOKEN.match(token)
        if not m:
            raise InputError(f"{token!r} is not model:percent; write the recipe like {EXAMPLE}")
        name, weight = m.group(1).lower(), m.group(2)
        if re.fullmatch(r"-\s*\d+(\.\d*)?", weight):
            raise InputError(f"the weight of {name} is negative ({weight}); weights must be 0 to 100")
        if not re.fullmatch(r"\+?\d+", weight):
            raise InputError(f"the weight of {name} must be a whole number of percent, got {weight!r}")
        if name in seen:
            raise InputError(f"{name} appears twice in the recipe; give each model once")
        seen.add(name)
        pairs.append((name, int(weight)))
    total = sum(p for _, p in pairs)
    if total == 0:
        raise InputError(f"all weights are zero; give at least one model a weight, like {EXAMPLE}")
    if total != 100:
        raise InputError(f"the weights add up to {total}; make them add up to 100")
    return tuple(pairs)


def normalise(pairs: Recipe) -> Recipe:
    """Zero weights dropped, sorted by name: one recipe, one spelling (the cache key for blended weights)."""
    return tuple(sorted((name, percent) for name, percent in pairs if percent > 0))


def canonical(recipe: Recipe) -> str:
    return " ".join(f"{name}:{percent}" for name, percent in normalise(recipe))


def check_known(recipe: Recipe, registry) -> None:
    unknown = [name for name, _ in recipe if name not in registry.models]
    if unknown:
        raise InputError(f"unknown model {unknown[0]!r} in the recipe; known models: {', '.join(registry.names)}")


def check_blendable(recipe: Recipe, registry) -> None:
    """Refuse unknown models, and models that are not one family of one architecture."""
    check_known(recipe, registry)
    entries = [registry.models[name] for name, _ in recipe]
    first = entries[0]
    for other in entries[1:]:
        if other.family != first.family:
            raise InputError(f"{first.name} (family {first.family}) and {other.name} (family {other.family}) "
                             f"have no common ancestor, so their weights can't be averaged; "
                             f"blend models of one family")
        a, b = first.architecture(), other.architecture()
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if differing:
            detail = ", ".join(f"{k} {a.get(k)} vs {b.get(k)}" for k in differing[:3])
            raise InputError(f"{first.name} and {other.name} have different architectures ({detail}), "
                             f"so their weights can't be averaged; blend models of one architecture")


def lineage_warning(recipe: Recipe, registry) -> str | None:
    """A caption warning when the models' files name different ancestors (within one family)."""
    ancestors = {name: registry.models[name].lineage.get("ancestor") for name, _ in recipe}
    if len(set(ancestors.values())) <= 1:
        return None
    listed = ", ".join(f"{name} ({ancestor or 'unknown'})" for name, ancestor in ancestors.items())
    return f"warning: these models' files name different ancestors: {listed}"


def parse_recipe(text: str, registry) -> Recipe:
    """The whole check: syntax, sum, known names, one family, one architecture. Returns the normalised recipe."""
    pairs = parse_weights(text)
    check_known(pairs, registry)  # a zero-weighted typo is still a typo
    recipe = normalise(pairs)
    check_blendable(recipe, registry)
    return recipe
