"""Slash commands written as text, for local mode: "/waifu seed:42 psi:0.7 model:anime" → a checked spec.

The same validators as the bot's (tasks.specs builders), so a command refused on Discord is refused here
with the same words.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from tasks.specs import BlendSpec, InputError, WaifuSpec, blend_spec, validate_latent_name, validate_steps, waifu_spec

COMMANDS = ("/waifu", "/blend", "/encode", "/models")
WAIFU_OPTIONS = ("seed", "psi", "model", "noise_mode", "class")
ENCODE_OPTIONS = ("photo", "name", "steps")
BLEND_USAGE = "/blend SOURCE human:60 fox:40 [psi:0.7], where SOURCE is seed:N or a name saved with /encode"


@dataclass(frozen=True)
class Command:
    kind: str                                   # 'waifu' | 'blend' | 'encode' | 'models'
    spec: WaifuSpec | BlendSpec | None = None   # waifu and blend
    photo: Path | None = None                   # encode: the spec needs the upload key, made at submit time
    name: str | None = None
    steps: int | None = None


def _options(tokens: list[str], allowed: tuple[str, ...], command: str) -> dict[str, str]:
    options = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        key = key.lower()
        if not sep and options:
            raise InputError(f"{token!r} is not an option of {command}; if it belongs to the value before it, "
                             f"put that value in quotes, like name:\"my face\" or photo:\"my photos/me.jpg\"")
        if not sep or key not in allowed:
            raise InputError(f"unknown option {token!r} for {command}; valid options: "
                             f"{', '.join(f'{k}:' for k in allowed)}")
        if key in options:
            raise InputError(f"{key}: is given twice; give it once")
        options[key] = value
    return options


def _waifu(tokens, registry) -> Command:
    o = _options(tokens, WAIFU_OPTIONS, "/waifu")
    return Command("waifu", waifu_spec(registry, seed=o.get("seed"), psi=o.get("psi"), model=o.get("model"),
                                       noise_mode=o.get("noise_mode", "const"), class_index=o.get("class")))


def _blend(tokens, registry) -> Command:
    if not tokens:
        raise InputError(f"/blend needs a source and a recipe: {BLEND_USAGE}")
    source, rest = tokens[0], tokens[1:]
    if source.lower().startswith("source:"):
        source = source[len("source:"):]
    psi = [t for t in rest if t.lower().startswith("psi:")]
    if len(psi) > 1:
        raise InputError("psi: is given twice; give it once")
    recipe = " ".join(t for t in rest if not t.lower().startswith("psi:"))
    if recipe.lower().startswith("spec:"):
        recipe = recipe[len("spec:"):]
    return Command("blend", blend_spec(registry, source=source, recipe=recipe,
                                       psi=psi[0][len("psi:"):] if psi else None))


def _encode(tokens) -> Command:
    o = _options(tokens, ENCODE_OPTIONS, "/encode")
    if "photo" not in o:
        raise InputError("/encode needs photo:<path to a photo> name:<a name for the face>")
    if "name" not in o:
        raise InputError("/encode needs name:<a name for the face>, used later as /blend NAME human:60 fox:40")
    photo = Path(o["photo"]).expanduser()
    if not photo.is_file():
        raise InputError(f"no photo at {photo}; give the path to a JPEG or PNG file")
    return Command("encode", photo=photo, name=validate_latent_name(o["name"]),
                   steps=validate_steps(o["steps"]) if "steps" in o else None)


def parse_command(text: str, registry) -> Command:
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise InputError(f"could not read the command ({e}); check its quotes") from None
    if not tokens:
        raise InputError(f"no command given; try one of {', '.join(COMMANDS)}, e.g. \"/waifu seed:42\"")
    name, rest = tokens[0].lower(), tokens[1:]
    if not name.startswith("/"):
        name = "/" + name
    if name == "/waifu":
        return _waifu(rest, registry)
    if name == "/blend":
        return _blend(rest, registry)
    if name == "/encode":
        return _encode(rest)
    if name == "/models":
        if rest:
            raise InputError("/models takes no options")
        return Command("models")
    raise InputError(f"unknown command {tokens[0]!r}; commands: {', '.join(COMMANDS)}")
