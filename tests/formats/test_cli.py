"""dnebot generate / convert / inspect, called as the console script's dispatcher calls them."""
import numpy as np
from PIL import Image

from models.render import render_seed
from tasks.cli import main as dnebot
from tests.formats.nvidia_writer import write_network_pickle
from tests.formats.small_models import make_generator
from tests.formats.tf_writer import write_tf_pickle


def test_generate_writes_generate_py_names_and_pixels(tmp_path, capsys):
    G = make_generator(seed=11)
    write_network_pickle(tmp_path / "net.pkl", G, "ada")
    rc = dnebot(["generate", "--network", str(tmp_path / "net.pkl"), "--seeds", "0-2,42", "--trunc", "0.7",
                 "--noise-mode", "const", "--outdir", str(tmp_path / "out")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "seed0000.png", "seed0001.png", "seed0002.png", "seed0042.png"]
    for seed in (0, 1, 2, 42):
        png = np.asarray(Image.open(tmp_path / "out" / f"seed{seed:04d}.png"))
        np.testing.assert_array_equal(png, render_seed(G, seed, 0.7, "const"))


def test_generate_with_class_on_a_conditional_model(tmp_path, capsys):
    G = make_generator(seed=12, c_dim=3)
    write_tf_pickle(tmp_path / "cond.pkl", G, version=5, synthesis_func="G_synthesis")
    assert dnebot(["generate", "--network", str(tmp_path / "cond.pkl"), "--seeds", "5", "--outdir",
                   str(tmp_path / "out")]) == 2
    assert "--class" in capsys.readouterr().err
    assert dnebot(["generate", "--network", str(tmp_path / "cond.pkl"), "--seeds", "5", "--class", "2",
                   "--outdir", str(tmp_path / "out")]) == 0
    png = np.asarray(Image.open(tmp_path / "out" / "seed0005.png"))
    np.testing.assert_array_equal(png, render_seed(G, 5, 1.0, "const", class_index=2))


def test_generate_reports_a_bad_file_in_one_line(tmp_path, capsys):
    (tmp_path / "x.pkl").write_bytes(b"")
    assert dnebot(["generate", "--network", str(tmp_path / "x.pkl"), "--seeds", "0", "--outdir",
                   str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == (
        "dnebot generate: x.pkl: the file is empty (0 bytes); the download or copy did not finish")


def test_convert_then_inspect(tmp_path, capsys):
    from models.weights import read_metadata
    G = make_generator(seed=13)
    write_tf_pickle(tmp_path / "tf.pkl", G)
    assert dnebot(["convert", str(tmp_path / "tf.pkl"), str(tmp_path / "tf.safetensors"), "--ancestor", "ffhq"]) == 0
    meta = read_metadata(tmp_path / "tf.safetensors")
    assert meta["lineage"] == {"name": "tf", "fine_tuned_from": None, "ancestor": "ffhq"}
    capsys.readouterr()
    assert dnebot(["inspect", str(tmp_path / "tf.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "format:       dnebot safetensors" in out and "resolution:   32x32" in out
    assert "parameters:   " in out and "ancestor ffhq" in out


def test_inspect_against(tmp_path, capsys):
    G = make_generator(seed=14)
    write_network_pickle(tmp_path / "a.pkl", G, "ada")
    write_tf_pickle(tmp_path / "b.pkl", G)  # same weights and noise: a common ancestor
    assert dnebot(["inspect", str(tmp_path / "a.pkl"), "--against", str(tmp_path / "b.pkl")]) == 0
    assert "blendable:    yes: same architecture and a common ancestor" in capsys.readouterr().out

    write_network_pickle(tmp_path / "c.pkl", make_generator(seed=15), "ada")  # trained independently
    assert dnebot(["inspect", str(tmp_path / "a.pkl"), "--against", str(tmp_path / "c.pkl")]) == 0
    assert "WARNING: no common ancestor" in capsys.readouterr().out

    write_network_pickle(tmp_path / "d.pkl", make_generator(img_resolution=64, channel_base=1024), "ada")
    assert dnebot(["inspect", str(tmp_path / "a.pkl"), "--against", str(tmp_path / "d.pkl")]) == 3
    assert "blendable:    no: the architectures differ (channel_base 512 vs 1024, img_resolution 32 vs 64)" \
        in capsys.readouterr().out


def test_generate_refuses_an_outdir_that_is_a_file_and_convert_makes_its_folder(tmp_path, capsys):
    from models.weights import save_generator
    G = make_generator(seed=13)
    save_generator(G, tmp_path / "g.safetensors", {"name": "g", "fine_tuned_from": None, "ancestor": "g"})
    (tmp_path / "afile").write_text("x")
    assert dnebot(["generate", "--network", str(tmp_path / "g.safetensors"), "--seeds", "1",
                   "--outdir", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"dnebot generate: --outdir {tmp_path / 'afile'} is a file, not a folder; give a folder for the PNGs")
    out = tmp_path / "new" / "dir" / "g2.safetensors"
    assert dnebot(["convert", str(tmp_path / "g.safetensors"), str(out)]) == 0
    assert out.is_file()
