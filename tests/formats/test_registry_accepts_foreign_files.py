"""models.toml may list an NVIDIA pickle: the registry uses its cached conversion, converted once by sha256."""
from tasks.registry import load_registry
from tests.formats.nvidia_writer import write_network_pickle
from tests.formats.small_models import make_generator


def test_registry_converts_a_pickle_once_and_reads_its_metadata(tmp_path, monkeypatch):
    monkeypatch.setenv("DNEBOT_CACHE", str(tmp_path / "cache"))
    write_network_pickle(tmp_path / "ffhq.pkl", make_generator(), "ada")
    (tmp_path / "models.toml").write_text('default_model = "ffhq"\n[families.faces]\nbase = "ffhq"\n'
                                          '[models.ffhq]\nfile = "ffhq.pkl"\nfamily = "faces"\npsi = 0.7\n')
    entry = load_registry(tmp_path / "models.toml").get("ffhq")
    assert entry.path.parent == tmp_path / "cache" and entry.path.suffix == ".safetensors"
    assert entry.resolution == 32 and entry.lineage["name"] == "ffhq"
    stamp = entry.path.stat().st_mtime_ns
    assert load_registry(tmp_path / "models.toml").get("ffhq").path.stat().st_mtime_ns == stamp
