"""Every unusable file gets one line naming the file and the problem."""
import io
import pickle

import pytest
import torch
from PIL import Image

from models.formats import ModelFileError, load_generator, read_network
from tests.formats.nvidia_writer import write_alias_free_pickle, write_network_pickle
from tests.formats.rosinality_writer import rosinality_state, write_rosinality_checkpoint
from tests.formats.small_models import make_generator
from tests.formats.tf_writer import write_stylegan1_pickle, write_tf_pickle


def message(path) -> str:
    with pytest.raises(ModelFileError) as e:
        load_generator(path)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    assert message(tmp_path / "empty.pkl") == "empty.pkl: the file is empty (0 bytes); the download or copy did not finish"


def test_missing_file(tmp_path):
    assert message(tmp_path / "nope.pkl") == "nope.pkl: no such file"


@pytest.mark.parametrize("fraction", [0.5, 0.999])
def test_truncated_network_pickle(tmp_path, fraction):
    write_network_pickle(tmp_path / "full.pkl", make_generator(), "ada")
    data = (tmp_path / "full.pkl").read_bytes()
    cut = data[: int(len(data) * fraction)]
    (tmp_path / "cut.pkl").write_bytes(cut)
    assert message(tmp_path / "cut.pkl") == (
        f"cut.pkl: the file is truncated: its {len(cut)} bytes end in the middle of the pickle (an interrupted "
        "download or copy?); get the file again")


def test_truncated_rosinality_checkpoint(tmp_path):
    write_rosinality_checkpoint(tmp_path / "full.pt", make_generator())
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert message(tmp_path / "cut.pt").startswith("cut.pt: the checkpoint is truncated or damaged (")


def test_renamed_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="JPEG")
    (tmp_path / "face.pkl").write_bytes(buf.getvalue())
    assert message(tmp_path / "face.pkl") == "face.pkl: this is a JPEG image, not a model file"


def test_unknown_bytes(tmp_path):
    (tmp_path / "notes.pkl").write_bytes(b"hello world, not a model")
    assert message(tmp_path / "notes.pkl") == (
        "notes.pkl: not a model file format dnebot knows (it starts with bytes 68 65 6c 6c 6f 20 77 6f); expected "
        "a StyleGAN2 .pkl, a rosinality .pt or a .safetensors file")


def test_pickle_of_something_else(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    assert message(tmp_path / "list.pkl") == "list.pkl: not a StyleGAN network pickle: it holds a list, not a snapshot with G_ema"
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"weights": 1}, protocol=3))
    assert message(tmp_path / "dict.pkl") == (
        "dict.pkl: not a StyleGAN network pickle: it holds a dict with keys [weights], not a snapshot with G_ema")


def test_checkpoint_with_missing_keys(tmp_path):
    G = make_generator()
    state = rosinality_state(G)
    del state["convs.2.conv.weight"], state["noises.noise_3"]
    torch.save({"g_ema": state, "latent_avg": G.mapping.w_avg}, tmp_path / "ckpt.pt")
    assert message(tmp_path / "ckpt.pt") == (
        "ckpt.pt: the checkpoint's g_ema is missing weights convs.2.conv.weight, noises.noise_3")


def test_torch_checkpoint_that_is_not_rosinality(tmp_path):
    torch.save({"model": {}, "epoch": 3}, tmp_path / "other.pt")
    assert message(tmp_path / "other.pt") == (
        "other.pt: a torch checkpoint without 'g_ema' (it holds: model, epoch); not a rosinality StyleGAN2 checkpoint")


def test_snapshot_without_g_ema(tmp_path):
    from tests.formats.nvidia_writer import generator_record
    from tests.formats.pickle_writer import dumps
    (tmp_path / "g_only.pkl").write_bytes(dumps({"G": generator_record(make_generator()), "D": None}, 3))
    assert message(tmp_path / "g_only.pkl") == (
        "g_only.pkl: the snapshot has no G_ema (keys: G, D); dnebot renders G_ema, as NVIDIA's generate.py does")


def test_stylegan1_is_refused_saying_what_it_is(tmp_path):
    write_stylegan1_pickle(tmp_path / "sg1.pkl")
    assert message(tmp_path / "sg1.pkl") == (
        "sg1.pkl: this is a StyleGAN1 (2019, NVlabs/stylegan) TensorFlow generator: a different architecture "
        "(AdaIN, no weight demodulation) that dnebot cannot run; use a StyleGAN2 or StyleGAN2-ADA model")


def test_stylegan3_alias_free_is_refused_saying_what_it_is(tmp_path):
    write_alias_free_pickle(tmp_path / "sg3r.pkl")
    assert message(tmp_path / "sg3r.pkl") == (
        "sg3r.pkl: this is a StyleGAN3 alias-free generator (stylegan3-t / stylegan3-r), a different architecture "
        "dnebot cannot run; use a StyleGAN2 model (stylegan3's --cfg=stylegan2 files are supported)")


def test_unknown_tensorflow_setting(tmp_path):
    G = make_generator()
    from tests.formats.tf_writer import static_kwargs_for
    write_tf_pickle(tmp_path / "fork.pkl", G, static_kwargs={**static_kwargs_for(G.config), "resolution_w": 64})
    assert message(tmp_path / "fork.pkl") == (
        "fork.pkl: the TensorFlow generator has setting(s) dnebot does not know: resolution_w; refusing to guess "
        "how they change the image")


def test_unknown_pytorch_setting(tmp_path):
    from tests.formats import nvidia_writer
    G = make_generator()
    original = nvidia_writer.generator_init_kwargs
    try:
        nvidia_writer.generator_init_kwargs = lambda c, f: {**original(c, f), "fancy_skip": True}
        write_network_pickle(tmp_path / "fork.pkl", G, "sg3")
    finally:
        nvidia_writer.generator_init_kwargs = original
    assert message(tmp_path / "fork.pkl") == (
        "fork.pkl: the Generator has setting(s) dnebot does not know: fancy_skip; refusing to guess how they "
        "change the image")


def test_unrecognised_generator_source(tmp_path):
    write_network_pickle(tmp_path / "fork.pkl", make_generator(), "ada", module_src="class Generator: pass\n")
    assert message(tmp_path / "fork.pkl").startswith(
        "fork.pkl: its Generator was defined by code dnebot does not recognise (a fork of stylegan2-ada-pytorch?")


def test_foreign_safetensors(tmp_path):
    from safetensors.numpy import save_file
    import numpy as np
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "lora.safetensors"))
    assert message(tmp_path / "lora.safetensors") == (
        "lora.safetensors: a safetensors file, but not a dnebot model (format=None); dnebot's .safetensors carry a "
        "generator_config")


def test_read_network_reports_the_same_errors_without_building(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"^empty.pt: the file is empty"):
        read_network(tmp_path / "empty.pt")
