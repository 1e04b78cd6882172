"""Weighted-average blending of generators fine-tuned from one ancestor (reference §5.3).

`/blend obama human:60 fox:20 anime:10 pony:10` renders a face with a generator whose every parameter is
0.6·human + 0.2·fox + 0.1·anime + 0.1·pony. That is only meaningful for models that share an ancestor (fine-tunes
keep the ancestor's neuron order; independently trained nets do not), and only possible for identical
architectures, which `check_compatible` enforces, naming what differs.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np
import torch

from models.networks import Generator

W_AVG_SAMPLES = 10_000
W_AVG_SEED = 123          # the projector's seed for its W statistics (ADA-PT projector.py), reused for the same job


class IncompatibleModelsError(ValueError):
    """The parents cannot be averaged; the message names the part that differs and the models involved."""


def _is_resample_filter(name: str) -> bool:
    return name.endswith("resample_filter")


def _is_noise_const(name: str) -> bool:
    return name.endswith("noise_const")


def normalise_recipe(recipe: Iterable[tuple[Hashable, float]]) -> tuple[tuple[Hashable, float], ...]:
    """Fractions summing to 1, zero weights dropped, largest first (ties in key order), rounded for cache keys.

    The order matters: the first part is the one whose noise_const is kept when the parents disagree.
    """
    parts = [(key, float(weight)) for key, weight in recipe]
    if not parts:
        raise ValueError("a blend needs at least one model")
    keys = [key for key, _ in parts]
    if len(set(keys)) != len(keys):
        raise ValueError(f"each model may appear once in a blend, got {keys}")
    for key, weight in parts:
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"blend weights must be non-negative numbers, got {weight!r} for {key}")
    total = sum(weight for _, weight in parts)
    if total <= 0:
        raise ValueError("blend weights must not all be zero")
    kept = [(key, round(weight / total, 9)) for key, weight in parts if weight > 0]
    return tuple(sorted(kept, key=lambda part: (-part[1], str(part[0]))))


def check_compatible(parents: Sequence[tuple[str, Generator]]) -> None:
    """Refuse parents whose configs or tensor shapes differ, naming the first differing part."""
    first_name, first = parents[0]
    first_config = first.config.to_dict()
    first_state = first.state_dict()
    for name, other in parents[1:]:
        other_config = other.config.to_dict()
        differing = [key for key in first_config if first_config[key] != other_config.get(key)]
        if differing:
            details = ", ".join(f"{key} {first_config[key]!r} vs {other_config.get(key)!r}" for key in differing)
            raise IncompatibleModelsError(
                f"{first_name} and {name} have different architectures ({details}); "
                "only models fine-tuned from the same ancestor, with identical architectures, can be blended.")
        other_state = other.state_dict()
        if first_state.keys() != other_state.keys():
            only = sorted(set(first_state) ^ set(other_state))
            raise IncompatibleModelsError(
                f"{first_name} and {name} have different layers (e.g. {only[0]}); they cannot be blended.")
        for key, tensor in first_state.items():
            if tensor.shape != other_state[key].shape:
                raise IncompatibleModelsError(
                    f"{first_name} and {name} differ in {key}: shape {tuple(tensor.shape)} vs "
                    f"{tuple(other_state[key].shape)}; they cannot be blended.")


@torch.no_grad()
def mean_w(G: Generator, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED, batch: int = 1000) -> torch.Tensor:
    """Mean of the mapping's output over `samples` seeded z (and uniformly drawn classes if conditional): [w_dim]."""
    device = next(G.parameters()).device
    rng = np.random.RandomState(seed)
    z_all = rng.randn(samples, G.z_dim)
    classes = rng.randint(0, G.c_dim, size=samples) if G.c_dim else None
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=device)
    for start in range(0, samples, batch):
        z = torch.from_numpy(z_all[start:start + batch]).to(device=device, dtype=torch.float32)
        c = None
        if classes is not None:
            c = torch.nn.functional.one_hot(
                torch.from_numpy(classes[start:start + batch]).to(device), G.c_dim).to(torch.float32)
        ws = G.mapping(z, c)            # no truncation: this is the centre truncation will pull toward
        total += ws[:, 0].to(torch.float64).sum(dim=0)
    return (total / samples).to(torch.float32)


@torch.no_grad()
def blend_generators(parents: Sequence[tuple[str, Generator, float]], *, w_avg_samples: int = W_AVG_SAMPLES,
                     w_avg_seed: int = W_AVG_SEED) -> Generator:
    """A new Generator (eval mode, on the first parent's device) whose parameters are Σ αₖ θₖ.

    `parents` are (name, generator, weight); weights are normalised to sum to 1. Names only label errors.
    """
    check_compatible([(name, G) for name, G, _ in parents])
    fractions = normalise_recipe((index, weight) for index, (_, _, weight) in enumerate(parents))
    chosen = [(parents[index][1], fraction) for index, fraction in fractions]
    first = chosen[0][0]
    states = [(G.state_dict(), fraction) for G, fraction in chosen]
    blended_state = {}
    for key, reference in states[0][0].items():
        if _is_resample_filter(key):
            blended_state[key] = reference.clone()        # a fixed FIR kernel, not a learned weight
        elif _is_noise_const(key):
            # Fine-tunes inherit the ancestor's noise maps, so normally all parents agree. If they do not, take the
            # largest part's: averaging k independent N(0,1) fields shrinks their variance (to ½ for two), which
            # would quietly weaken every noise-driven detail (hair, pores, fur).
            blended_state[key] = reference.clone()
        elif key == "mapping.w_avg":
            blended_state[key] = reference.clone()        # replaced below once the mapping is blended
        elif not reference.is_floating_point():
            blended_state[key] = reference.clone()
        else:
            total = torch.zeros_like(reference, dtype=torch.float64)
            for state, fraction in states:
                total += fraction * state[key].to(torch.float64)
            blended_state[key] = total.to(reference.dtype)
    blended = copy.deepcopy(first)
    blended.load_state_dict(blended_state)
    blended.eval().requires_grad_(False)
    mapping_keys = [key for key in blended_state if key.startswith("mapping.") and key != "mapping.w_avg"]
    mapping_unchanged = all(
        torch.equal(state[key], states[0][0][key]) for state, _ in states[1:] for key in mapping_keys)
    if not mapping_unchanged:
        # The mapping is non-linear, so the parents' w_avg (or their weighted mean) is not the centre of the
        # blended mapping's W; truncation toward a wrong centre shifts every truncated face. Measure it instead.
        # (When every part shares the mapping, e.g. a model blended with itself, its own w_avg already is exact.)
        blended.mapping.w_avg.copy_(mean_w(blended, w_avg_samples, w_avg_seed))
    return blended


class BlendCache:
    """A small LRU of blended generators keyed by normalised recipe (each blended 512 px model is ~120 MB)."""

    def __init__(self, max_entries: int = 4):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Generator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Generator]) -> Generator:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        blended = build()      # outside the lock: a blend can take seconds; a duplicate build is harmless
        with self._lock:
            self._entries[key] = blended
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return blended

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries
