import pytest

from tasks.blend_recipe import canonical, lineage_warning, parse_recipe, parse_weights
from tasks.specs import InputError


def refusal(text, registry=None):
    with pytest.raises(InputError) as e:
        parse_recipe(text, registry) if registry is not None else parse_weights(text)
    return str(e.value)


def test_normalised_sorted_and_zero_dropped(header_registry):
    assert parse_recipe("human:60 fox:20 anime:10 pony:10", header_registry) == (
        ("anime", 10), ("fox", 20), ("human", 60), ("pony", 10))
    assert parse_recipe("Fox:50, human:50 pony:0", header_registry) == (("fox", 50), ("human", 50))
    assert canonical((("pony", 10), ("human", 90), ("fox", 0))) == "human:90 pony:10"


def test_sum_not_100():
    assert refusal("human:60 fox:20 anime:10 pony:9") == "the weights add up to 99; make them add up to 100"
    assert refusal("human:60 fox:60") == "the weights add up to 120; make them add up to 100"


def test_syntax_refusals():
    example = "human:60 fox:20 anime:10 pony:10"
    assert refusal("") == f"the blend recipe is empty; give models and percentages like {example}"
    assert refusal("   ") == f"the blend recipe is empty; give models and percentages like {example}"
    assert refusal("human:0 fox:0") == f"all weights are zero; give at least one model a weight, like {example}"
    assert refusal("human:120 fox:-20") == "the weight of fox is negative (-20); weights must be 0 to 100"
    assert refusal("human:lots") == "the weight of human must be a whole number of percent, got 'lots'"
    assert refusal("human:50.5 fox:49.5") == "the weight of human must be a whole number of percent, got '50.5'"
    assert refusal("human:50 fox:") == "the weight of fox must be a whole number of percent, got ''"
    assert refusal("human60 fox:40") == f"'human60' is not model:percent; write the recipe like {example}"
    assert refusal("human:50 Human:50") == "human appears twice in the recipe; give each model once"


def test_unknown_name(header_registry):
    assert refusal("human:50 dog:50", header_registry) == (
        "unknown model 'dog' in the recipe; known models: anime, big, cat, fox, human, pony")
    assert refusal("human:100 dgo:0", header_registry).startswith("unknown model 'dgo'")


def test_other_family_refused(header_registry):
    assert refusal("human:50 cat:50", header_registry) == (
        "cat (family cats) and human (family demo) have no common ancestor, so their weights can't be averaged; "
        "blend models of one family")


def test_other_architecture_refused(header_registry):
    assert refusal("human:50 big:50", header_registry) == (
        "big and human have different architectures (img_resolution 32 vs 16), so their weights can't be "
        "averaged; blend models of one architecture")


def test_zero_weight_incompatible_model_is_dropped_first(header_registry):
    assert parse_recipe("human:100 big:0", header_registry) == (("human", 100),)


def _demo_registry(tmp_path, extra: dict[str, tuple[dict, dict]]):
    """human plus `extra` models (name → (generator_config changes, lineage)), all in family demo."""
    from tasks.registry import load_registry
    from tests.conftest import TINY_CONFIG, write_model_header, write_models_toml

    base_config = {**TINY_CONFIG, "mapping_lr_multiplier": 0.01, "num_fp16_res": 0}
    models = {"human": ({}, {"name": "human", "fine_tuned_from": None, "ancestor": "human"}), **extra}
    for name, (changes, lineage) in models.items():
        write_model_header(tmp_path / f"{name}.safetensors", {**base_config, **changes}, lineage)
    toml = write_models_toml(tmp_path, {name: {"file": f"{name}.safetensors", "family": "demo"} for name in models},
                             {"demo": "human"}, "human")
    return load_registry(toml)


def test_files_naming_another_ancestor_blend_with_a_warning(tmp_path):
    registry = _demo_registry(tmp_path, {
        "fox": ({}, {"name": "fox", "fine_tuned_from": "human", "ancestor": "human"}),
        "import": ({}, {"name": "import", "fine_tuned_from": None, "ancestor": "noise-1f2e"})})
    assert lineage_warning(parse_recipe("human:50 fox:50", registry), registry) is None
    recipe = parse_recipe("human:50 import:50", registry)
    assert recipe == (("human", 50), ("import", 50))
    assert lineage_warning(recipe, registry) == (
        "warning: these models' files name different ancestors: human (human), import (noise-1f2e)")


def test_fp16_layers_do_not_block_a_blend_but_a_mapping_learning_rate_does(tmp_path):
    lineage = {"fine_tuned_from": "human", "ancestor": "human"}
    registry = _demo_registry(tmp_path, {
        "fast": ({"num_fp16_res": 4}, {"name": "fast", **lineage}),
        "slowmap": ({"mapping_lr_multiplier": 0.1}, {"name": "slowmap", **lineage})})
    assert parse_recipe("human:50 fast:50", registry) == (("fast", 50), ("human", 50))
    assert refusal("human:50 slowmap:50", registry) == (
        "human and slowmap have different architectures (mapping_lr_multiplier 0.01 vs 0.1), so their weights "
        "can't be averaged; blend models of one architecture")
