import pytest

from tasks.command_line import parse_command
from tasks.specs import BlendSpec, InputError, WaifuSpec


def refusal(text, registry):
    with pytest.raises(InputError) as e:
        parse_command(text, registry)
    return str(e.value)


def test_waifu(header_registry):
    assert parse_command("/waifu seed:42 psi:0.7 model:anime", header_registry).spec == WaifuSpec("anime", 42, 0.7)
    assert parse_command("/waifu seed:7", header_registry).spec == WaifuSpec("anime", 7, 0.7)
    spec = parse_command("waifu seed:7 noise_mode:random model:fox psi:1", header_registry).spec
    assert spec == WaifuSpec("fox", 7, 1.0, "random")


def test_blend(header_registry):
    cmd = parse_command("/blend obama human:60 fox:20 anime:10 pony:10", header_registry)
    assert cmd.kind == "blend"
    assert cmd.spec == BlendSpec(None, "obama", (("anime", 10), ("fox", 20), ("human", 60), ("pony", 10)), 0.7)
    cmd = parse_command("/blend seed:42 human:50 fox:50", header_registry)
    assert cmd.spec == BlendSpec(42, None, (("fox", 50), ("human", 50)), 0.7)
    cmd = parse_command("/blend source:seed:42 spec:human:50 fox:50 psi:0.5", header_registry)
    assert cmd.spec == BlendSpec(42, None, (("fox", 50), ("human", 50)), 0.5)


def test_blend_refusals(header_registry):
    assert refusal("/blend obama human:60 fox:20 anime:10 pony:9", header_registry) == \
        "the weights add up to 99; make them add up to 100"
    assert refusal("/blend", header_registry) == ("/blend needs a source and a recipe: /blend SOURCE human:60 fox:40 "
                                                  "[psi:0.7], where SOURCE is seed:N or a name saved with /encode")
    assert refusal("/blend obama", header_registry).startswith("the blend recipe is empty")
    assert refusal("/blend seed:99999999999 human:100", header_registry) == \
        "seed must be a whole number from 0 to 4294967295, got '99999999999'"


def test_encode(header_registry, tmp_path):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"not checked here")
    cmd = parse_command(f"/encode photo:{photo} name:Obama", header_registry)
    assert (cmd.kind, cmd.photo, cmd.name, cmd.steps) == ("encode", photo, "obama", None)
    spaced = tmp_path / "my photo.jpg"
    spaced.write_bytes(b"x")
    assert parse_command(f'/encode photo:"{spaced}" name:me steps:20', header_registry).steps == 20


def test_encode_refusals(header_registry, tmp_path):
    assert refusal("/encode name:obama", header_registry) == \
        "/encode needs photo:<path to a photo> name:<a name for the face>"
    assert refusal(f"/encode photo:{tmp_path}/gone.jpg name:x", header_registry) == \
        f"no photo at {tmp_path}/gone.jpg; give the path to a JPEG or PNG file"


def test_models(header_registry):
    assert parse_command("/models", header_registry).kind == "models"


def test_unknown_option_lists_valid_ones(header_registry):
    assert refusal("/waifu sed:42", header_registry) == \
        "unknown option 'sed:42' for /waifu; valid options: seed:, psi:, model:, noise_mode:, class:"
    assert refusal("/waifu 42", header_registry) == \
        "unknown option '42' for /waifu; valid options: seed:, psi:, model:, noise_mode:, class:"
    assert refusal("/waifu seed:1 seed:2", header_registry) == "seed: is given twice; give it once"
    assert refusal("/encode photo:x name:y size:3", header_registry) == \
        "unknown option 'size:3' for /encode; valid options: photo:, name:, steps:"


def test_unknown_command(header_registry):
    assert refusal("/dance", header_registry) == "unknown command '/dance'; commands: /waifu, /blend, /encode, /models"
    assert refusal("", header_registry).startswith("no command given")
    assert refusal('/waifu model:"anime', header_registry) == \
        "could not read the command (No closing quotation); check its quotes"
    assert refusal("/waifu model:dog", header_registry) == \
        "unknown model 'dog'; known models: anime, big, cat, fox, human, pony"


def test_dnebot_worker_is_the_celery_worker_command():
    from tasks.worker import build_parser, celery_argv

    assert celery_argv(build_parser().parse_args([])) == \
        ["worker", "-Q", "gpu.fast,gpu.slow", "-P", "solo", "-c", "1", "--loglevel", "INFO"]
    args = build_parser().parse_args(["--queues", "gpu.slow", "--pool", "prefork", "-n", "gpu0@%h"])
    assert celery_argv(args) == ["worker", "-Q", "gpu.slow", "-P", "prefork", "-c", "1", "--loglevel", "INFO",
                                 "-n", "gpu0@%h"]


def test_a_value_with_a_space_asks_for_quotes(header_registry, tmp_path):
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"x")
    assert refusal(f"/encode photo:{photo} name:my face", header_registry) == (
        "'face' is not an option of /encode; if it belongs to the value before it, put that value in quotes, "
        "like name:\"my face\" or photo:\"my photos/me.jpg\"")
