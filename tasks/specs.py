"""Job specs: the plain data that travels from the bot (or local mode) to a worker.

Every value is checked here, before anything is queued, by validators that the bot and local mode share,
so a refusal reads the same everywhere and always says what to change. Nothing here imports torch.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass

# Seeds are NVIDIA's: z = RandomState(seed).randn(1, z_dim), and RandomState takes 0..2**32-1.
MAX_SEED = 2**32 - 1
# Truncation beyond this range gives saturated noise rather than faces; nobody means it.
PSI_MIN, PSI_MAX = -1.0, 2.0
NOISE_MODES = ("const", "random", "none")
LATENT_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
# Projection steps: ADA-PT's projector uses 1000; a first version on CPU needs far fewer.
DEFAULT_ENCODE_STEPS = 100
MAX_ENCODE_STEPS = 1000


class InputError(ValueError):
    """A refusal a user can fix; the message says how."""


def _whole_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def validate_seed(value) -> int:
    seed = _whole_number(value)
    if seed is None or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be a whole number from 0 to {MAX_SEED}, got {value!r}")
    return seed


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def validate_psi(value) -> float:
    try:
        psi = float(value)
    except (TypeError, ValueError):
        psi = None
    if psi is None or isinstance(value, bool) or not PSI_MIN <= psi <= PSI_MAX:
        raise InputError(f"psi must be a number from {PSI_MIN:g} to {PSI_MAX:g} (0.7 is typical), got {value!r}")
    return psi


def validate_noise_mode(value) -> str:
    mode = str(value).lower()   # like model and face names, options are case-insensitive
    if mode not in NOISE_MODES:
        raise InputError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {value!r}")
    return mode


def validate_latent_name(value) -> str:
    """Names of saved faces are case-insensitive: 'Obama' and 'obama' are one face."""
    name = value.strip().lower() if isinstance(value, str) else None
    if name is None or not LATENT_NAME.match(name):
        raise InputError(
            f"a face name must be 1 to 32 letters, digits, '_' or '-' (like obama or my_face), got {value!r}")
    return name


def validate_steps(value) -> int:
    steps = _whole_number(value)
    if steps is None or not 1 <= steps <= MAX_ENCODE_STEPS:
        raise InputError(f"steps must be a whole number from 1 to {MAX_ENCODE_STEPS}, got {value!r}")
    return steps


def validate_class_index(value, c_dim: int, model: str) -> int | None:
    if value is None:
        return None
    index = _whole_number(value)
    if c_dim == 0:
        raise InputError(f"model {model} is not conditional; leave out class")
    if index is None or not 0 <= index < c_dim:
        raise InputError(f"class must be a whole number from 0 to {c_dim - 1} for model {model}, got {value!r}")
    return index


class JobSpec:
    """Base of the job specs: plain data that travels in the Celery message as JSON."""

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))   # the message's own shape: tuples arrive as lists

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**d)   # each spec's __post_init__ validates and normalises what arrives


@dataclass(frozen=True)
class WaifuSpec(JobSpec):
    model: str
    seed: int
    psi: float
    noise_mode: str = "const"
    class_index: int | None = None

    def __post_init__(self):
        validate_seed(self.seed)
        validate_psi(self.psi)
        validate_noise_mode(self.noise_mode)


@dataclass(frozen=True)
class BlendSpec(JobSpec):
    """A face (a seed of the family's base model, or a saved name) rendered by a weighted average of models.

    `recipe` is the normalised recipe from tasks.blend_recipe: (model, percent) pairs sorted by name,
    percents summing to 100, no zeros.
    """
    source_seed: int | None
    source_name: str | None
    recipe: tuple[tuple[str, int], ...]
    psi: float

    def __post_init__(self):
        if (self.source_seed is None) == (self.source_name is None):
            raise InputError("a blend needs exactly one source: seed:N or the name of a face saved with /encode")
        if self.source_seed is not None:
            validate_seed(self.source_seed)
        else:
            validate_latent_name(self.source_name)
        validate_psi(self.psi)
        object.__setattr__(self, "recipe", tuple((str(m), int(p)) for m, p in self.recipe))

    @property
    def source(self) -> str:
        return f"seed:{self.source_seed}" if self.source_seed is not None else self.source_name

    @property
    def recipe_text(self) -> str:
        return " ".join(f"{model}:{percent}" for model, percent in self.recipe)


@dataclass(frozen=True)
class EncodeSpec(JobSpec):
    name: str
    photo_key: str
    model: str
    steps: int = DEFAULT_ENCODE_STEPS

    def __post_init__(self):
        validate_latent_name(self.name)
        validate_steps(self.steps)


SPEC_TYPES = {"waifu": WaifuSpec, "blend": BlendSpec, "encode": EncodeSpec}


# Builders: fill defaults from the registry and check what depends on it. The bot calls these with its
# option values; local mode calls them through tasks.command_line. `registry` is a tasks.registry.Registry.

def waifu_spec(registry, *, seed=None, psi=None, model=None, noise_mode="const", class_index=None) -> WaifuSpec:
    entry = registry.get(model) if model is not None else registry.default
    return WaifuSpec(
        model=entry.name,
        seed=random_seed() if seed is None else validate_seed(seed),
        psi=entry.psi if psi is None else validate_psi(psi),
        noise_mode=validate_noise_mode(noise_mode),
        class_index=validate_class_index(class_index, int(entry.generator_config.get("c_dim", 0)), entry.name),
    )


def blend_spec(registry, *, source, recipe, psi=None) -> BlendSpec:
    """`source` is 'seed:N', a bare seed number, or a saved face name; `recipe` is 'human:60 fox:40'."""
    from tasks.blend_recipe import parse_recipe  # blend_recipe imports this module

    source = str(source).strip()
    if re.fullmatch(r"[^:\s]+:[^:\s]*", source) and not source.lower().startswith("seed:"):
        raise InputError(f"the blend needs a source before the recipe: a face saved by /encode or seed:N, "
                         f"got {source!r} (like /blend seed:42 {source} ...)")
    normalised = parse_recipe(recipe, registry)
    base = registry.base_for(normalised[0][0])
    is_seed = source.lower().startswith("seed:") or re.fullmatch(r"\d+", source)
    if psi is not None and not is_seed:
        raise InputError(f"psi only applies to a seed:N source; {source!r} is a saved face, which is used as "
                         f"encoded: leave psi out")
    seed_text = source[len("seed:"):] if source.lower().startswith("seed:") else None
    if seed_text is None and re.fullmatch(r"\d+", source):
        seed_text = source
    return BlendSpec(
        source_seed=validate_seed(seed_text) if seed_text is not None else None,
        source_name=None if seed_text is not None else validate_latent_name(source),
        recipe=normalised,
        psi=base.psi if psi is None else validate_psi(psi),
    )


def encode_spec(registry, *, name, photo_key, steps=None, model=None) -> EncodeSpec:
    """Photos project into the base model of a family (the default model's family unless `model` says)."""
    entry = registry.get(model) if model is not None else registry.default
    base = registry.base_for(entry.name)
    return EncodeSpec(name=validate_latent_name(name), photo_key=photo_key, model=base.name,
                      steps=DEFAULT_ENCODE_STEPS if steps is None else validate_steps(steps))


def check_saved_face(spec: BlendSpec, registry, saved_model: str | None, saved_names=()) -> None:
    """A blend of a saved face needs the face to exist in this scope, in the W space of the recipe's family base.

    saved_model: the model the face was encoded into (tasks.store), None when nothing is saved under the name.
    """
    if spec.source_name is None:
        return
    if saved_model is None:
        others = f" (saved here: {', '.join(saved_names)})" if saved_names else ""
        raise InputError(f"no face is saved as {spec.source_name!r} here; save one with /encode photo:<your photo> "
                         f"name:{spec.source_name}, or blend seed:N{others}")
    base = registry.base_for(spec.recipe[0][0])
    if saved_model != base.name:
        raise InputError(f"{spec.source_name!r} was encoded into {saved_model}, but these models belong to "
                         f"{base.name}'s family; blend models of {saved_model}'s family")
