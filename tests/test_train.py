"""`dnebot train` at toy scale: a valid run directory, resume, bad data, and the pieces (D, augmentation, crops)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from bot import watch
from bot.run_dirs import read_progress
from bot.watch_discord import Destination
from models import train
from models.augment import AugmentPipe
from models.discriminator import Discriminator
from models.networks import Generator, GeneratorConfig
from models.training_data import crop_box
from models.weights import load_generator, read_metadata, save_generator
from tests.test_watch import Recorder

TINY = GeneratorConfig(z_dim=16, w_dim=16, mapping_layers=2, img_resolution=16, channel_base=256, channel_max=32)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def base_model(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny-human.safetensors"
    save_generator(Generator(TINY), path, {"name": "tinyhuman", "fine_tuned_from": None, "ancestor": "tinyhuman"})
    return path


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(8):
        width, height = (24, 40) if index % 2 else (32, 32)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def train_args(base, data, out, *extra):
    return ["--base", str(base), "--data", str(data), "--out", str(out), "--kimg", "0.024", "--batch", "4",
            "--tick-kimg", "0.012", "--threads", "1", *extra]




def test_a_handful_of_steps_writes_a_run_dir_the_watcher_posts(tmp_path, base_model, image_folder):
    out = tmp_path / "cat"
    assert train.main(train_args(base_model, image_folder, out)) == 0
    names = {p.name for p in out.iterdir()}
    assert {"reals.png", "fakes_init.png", "fakes000000.png", "stats.jsonl", "log.txt", "training_options.json",
            "network-snapshot-000000.safetensors", "training-state.pt"} <= names
    lines = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert {"Progress/kimg", "Timing/sec_per_kimg", "Loss/G/loss", "Loss/D/loss", "Progress/augment"} <= set(lines[-1])
    assert read_progress(out).kimg == pytest.approx(0.024)
    meta = read_metadata(out / "network-snapshot-000000.safetensors")
    assert meta["lineage"] == {"name": "cat", "fine_tuned_from": "tinyhuman", "ancestor": "tinyhuman"}
    G = load_generator(out / "network-snapshot-000000.safetensors")
    assert G(torch.randn(2, TINY.z_dim)).shape == (2, 3, 16, 16)
    assert Image.open(out / "fakes000000.png").size == (16 * 16, 8 * 16)   # auto grid on a CPU: 16×8 cells

    recorder = Recorder()
    watcher = watch.Watcher([out], Destination.webhook("http://127.0.0.1:9/api/webhooks/1/" + "t" * 68), 2**20,
                            post=recorder)
    watcher.run(interval=0.05, once=True)
    assert [post[1] for post in recorder.posts] == ["reals.png", "fakes_init.png", "fakes000000.png"]
    assert "s/kimg" in recorder.posts[-1][0]


def test_resume_continues_from_the_saved_state(tmp_path, base_model, image_folder):
    out = tmp_path / "run"
    assert train.main(train_args(base_model, image_folder, out)) == 0
    assert train.main(train_args(base_model, image_folder, out)) == 2, "an existing run needs --resume"
    assert train.main(["--out", str(out), "--resume", "--kimg", "0.048", "--threads", "1"]) == 0
    kimgs = [json.loads(line)["Progress/kimg"]["mean"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert kimgs == pytest.approx([0.012, 0.024, 0.036, 0.048])
    assert "resumed from" in (out / "log.txt").read_text()
    assert train.main(["--out", str(tmp_path / "fresh"), "--resume"]) == 2


def test_bad_data_is_reported_not_crashed_on(tmp_path, base_model, image_folder, capsys):
    (image_folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (4, 4)).save(image_folder / "tiny.png")
    out = tmp_path / "run"
    assert train.main(train_args(base_model, image_folder, out)) == 0
    logged = (out / "log.txt").read_text()
    assert "skipped broken.jpg: cannot be read" in logged and "skipped tiny.png: 4×4 is too small" in logged

    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main(train_args(base_model, empty, tmp_path / "r2")) == 2
    assert "found no .png" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()   # nothing left behind: the same command works once the folder has images
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"garbage")
    Image.new("RGB", (3, 30)).save(junk / "b.png")
    assert train.main(train_args(base_model, junk, tmp_path / "r3")) == 2
    assert "1 unreadable, 1 smaller than 8 px" in capsys.readouterr().err
    assert train.main(train_args(tmp_path / "nope.safetensors", image_folder, tmp_path / "r4")) == 2


def test_discriminator_shape_and_ada_pt_names():
    D = Discriminator.for_generator(TINY)
    assert D(torch.randn(6, 3, 16, 16)).shape == (6, 1)
    names = set(D.state_dict())
    assert {"b16.fromrgb.weight", "b16.conv0.weight", "b16.conv1.weight", "b16.skip.weight", "b8.conv1.bias",
            "b4.conv.weight", "b4.fc.weight", "b4.out.weight"} <= names
    assert "b8.fromrgb.weight" not in names


def test_augmentation_is_identity_at_p0_and_differentiable():
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    assert torch.equal(AugmentPipe(p=0)(images), images)
    pipe = AugmentPipe(p=1, brightness_std=0, contrast_std=0, saturation_std=0, translate_max=0)
    flipped = pipe(images)
    for out, image in zip(flipped, images):
        assert torch.allclose(out, image, atol=1e-5) or torch.allclose(out, image.flip(-1), atol=1e-5)
    AugmentPipe(p=1)(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_top_crop_keeps_the_top_of_a_portrait():
    assert crop_box(100, 300, "top") == (0, 0, 100, 100)
    assert crop_box(100, 300, "center") == (0, 100, 100, 200)
    assert crop_box(300, 100, "top") == (100, 0, 200, 100)
    with pytest.raises(ValueError, match="top"):
        crop_box(10, 10, "smart")


def test_demo_robots_are_deterministic_and_share_the_zoo_traits(tmp_path):
    from models.training_data import render_robot, write_demo_folder
    z = np.random.RandomState(3).randn(128)
    first = render_robot(z, 32)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, render_robot(z, 32))
    assert not np.array_equal(first, render_robot(np.random.RandomState(4).randn(128), 32))
    paths = write_demo_folder(tmp_path / "robots", "robot", 3, size=32)
    assert [p.name for p in paths] == ["robot00000.png", "robot00001.png", "robot00002.png"]
