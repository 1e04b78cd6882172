import pytest

from tasks.specs import (BlendSpec, EncodeSpec, InputError, WaifuSpec, blend_spec, encode_spec, validate_latent_name,
                         validate_noise_mode, validate_psi, validate_seed, validate_steps, waifu_spec)


@pytest.mark.parametrize("value, seed", [(0, 0), (42, 42), ("42", 42), (2**32 - 1, 2**32 - 1), (7.0, 7)])
def test_seed_accepted(value, seed):
    assert validate_seed(value) == seed


@pytest.mark.parametrize("value", [-1, 2**32, "abc", 1.5, None, True, "4294967296"])
def test_seed_refused(value):
    with pytest.raises(InputError) as e:
        validate_seed(value)
    assert str(e.value) == f"seed must be a whole number from 0 to 4294967295, got {value!r}"


def test_psi():
    assert validate_psi("0.7") == 0.7 and validate_psi(-1) == -1.0 and validate_psi(2) == 2.0
    for bad in (2.5, -1.1, "x", None):
        with pytest.raises(InputError) as e:
            validate_psi(bad)
        assert str(e.value) == f"psi must be a number from -1 to 2 (0.7 is typical), got {bad!r}"


def test_noise_mode():
    assert validate_noise_mode("random") == "random"
    with pytest.raises(InputError) as e:
        validate_noise_mode("loud")
    assert str(e.value) == "noise_mode must be one of const, random, none, got 'loud'"


@pytest.mark.parametrize("name, expected", [("Obama", "obama"), ("my_face-2", "my_face-2"), ("a" * 32, "a" * 32)])
def test_latent_name_accepted(name, expected):
    assert validate_latent_name(name) == expected


@pytest.mark.parametrize("name", ["", "a" * 33, "two words", "obama:1", "émile", None])
def test_latent_name_refused(name):
    with pytest.raises(InputError) as e:
        validate_latent_name(name)
    assert str(e.value) == ("a face name must be 1 to 32 letters, digits, '_' or '-' (like obama or my_face), "
                            f"got {name!r}")


def test_steps():
    assert validate_steps("50") == 50
    with pytest.raises(InputError) as e:
        validate_steps(0)
    assert str(e.value) == "steps must be a whole number from 1 to 1000, got 0"


def test_round_trips():
    waifu = WaifuSpec("anime", 42, 0.7)
    blend = BlendSpec(None, "obama", (("fox", 20), ("human", 80)), 0.7)
    encode = EncodeSpec("obama", "dnebot:upload:1", "human", 50)
    for spec in (waifu, blend, encode):
        assert type(spec).from_dict(spec.to_dict()) == spec
    assert blend.to_dict()["recipe"] == [["fox", 20], ["human", 80]]


def test_spec_constructors_validate():
    with pytest.raises(InputError):
        WaifuSpec("anime", -1, 0.7)
    with pytest.raises(InputError) as e:
        BlendSpec(1, "obama", (("human", 100),), 0.7)
    assert str(e.value) == "a blend needs exactly one source: seed:N or the name of a face saved with /encode"


def test_waifu_builder_defaults(header_registry):
    spec = waifu_spec(header_registry, seed=42)
    assert spec == WaifuSpec("anime", 42, 0.7)
    assert 0 <= waifu_spec(header_registry).seed <= 2**32 - 1
    assert waifu_spec(header_registry, seed="1", psi="1", model="Fox").model == "fox"


def test_waifu_builder_refusals(header_registry):
    with pytest.raises(InputError) as e:
        waifu_spec(header_registry, model="dog")
    assert str(e.value) == "unknown model 'dog'; known models: anime, big, cat, fox, human, pony"
    with pytest.raises(InputError) as e:
        waifu_spec(header_registry, class_index=1)
    assert str(e.value) == "model anime is not conditional; leave out class"


def test_blend_builder(header_registry):
    spec = blend_spec(header_registry, source="seed:42", recipe="human:60 fox:40")
    assert (spec.source_seed, spec.source_name, spec.recipe, spec.psi) == (42, None, (("fox", 40), ("human", 60)), 0.7)
    assert blend_spec(header_registry, source="Obama", recipe="human:100").source_name == "obama"
    with pytest.raises(InputError) as e:
        blend_spec(header_registry, source="seed:-3", recipe="human:100")
    assert str(e.value) == "seed must be a whole number from 0 to 4294967295, got '-3'"
    with pytest.raises(InputError) as e:
        blend_spec(header_registry, source="obama", recipe="human:100", psi=0.5)
    assert str(e.value) == ("psi only applies to a seed:N source; 'obama' is a saved face, which is used as "
                            "encoded: leave psi out")
    assert blend_spec(header_registry, source="seed:1", recipe="human:100", psi=0.5).psi == 0.5
    with pytest.raises(InputError) as e:   # `/blend human:50 fox:50`: the first weight taken for the source
        blend_spec(header_registry, source="human:50", recipe="fox:50")
    assert str(e.value) == ("the blend needs a source before the recipe: a face saved by /encode or seed:N, "
                            "got 'human:50' (like /blend seed:42 human:50 ...)")


def test_encode_builder_projects_into_family_base(header_registry):
    spec = encode_spec(header_registry, name="Obama", photo_key="k")
    assert spec == EncodeSpec("obama", "k", "human", 100)


def test_saved_face_checks(header_registry):
    from tasks.specs import check_saved_face

    spec = blend_spec(header_registry, source="obama", recipe="human:50 fox:50")
    check_saved_face(spec, header_registry, "human")
    with pytest.raises(InputError) as e:
        check_saved_face(spec, header_registry, None, ["bush", "me"])
    assert str(e.value) == ("no face is saved as 'obama' here; save one with /encode photo:<your photo> name:obama, "
                            "or blend seed:N (saved here: bush, me)")
    with pytest.raises(InputError) as e:
        check_saved_face(spec, header_registry, "cat")
    assert str(e.value) == ("'obama' was encoded into cat, but these models belong to human's family; "
                            "blend models of cat's family")
    check_saved_face(blend_spec(header_registry, source="seed:1", recipe="human:100"), header_registry, None)


def test_bot_side_modules_import_no_torch():
    import subprocess
    import sys

    code = ("import sys, tasks.specs, tasks.blend_recipe, tasks.registry, tasks.store, tasks.celery_app, "
            "tasks.submit, tasks.command_line, tasks.jobs; print(sorted(m for m in ('torch', 'models.service') "
            "if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_noise_mode_is_case_insensitive(header_registry):
    assert waifu_spec(header_registry, seed=1, noise_mode="RANDOM").noise_mode == "random"
