"""The restricted unpickler reads real torch tensor pickles and refuses everything that could run code."""
import io
import os
import pickle

import numpy as np
import pytest
import torch

from models.formats import ModelFileError, read_network
from models.formats import safe_pickle
from tests.formats.nvidia_writer import write_network_pickle
from tests.formats.pickle_writer import GlobalName, dumps, legacy_storage_stream
from tests.formats.small_models import make_generator
from tests.formats.tf_writer import write_tf_pickle


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reads_tensors_exactly_as_torch_pickles_them(protocol):
    t = torch.randn(3, 4, 5)
    cases = [torch.nn.Parameter(t, requires_grad=False), t.half(), t.double(), t.transpose(0, 2), t[1:, 2:],
             t.to(memory_format=torch.contiguous_format).bfloat16(), torch.arange(7), torch.tensor(2.5)]
    for obj in cases:
        got = safe_pickle.load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
        want = obj.detach().float().numpy() if obj.dtype == torch.bfloat16 else obj.detach().numpy()
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_storage_views_the_pickle_bytes_without_copying():
    stream = legacy_storage_stream(np.arange(1000, dtype=np.float32))
    arr = safe_pickle.load_legacy_storage(stream)
    assert not arr.flags.owndata and arr.base is not None
    np.testing.assert_array_equal(arr, np.arange(1000, dtype=np.float32))


def test_tensor_reaching_past_its_storage_is_refused():
    stream = legacy_storage_stream(np.zeros(4, np.float32))
    with pytest.raises(pickle.UnpicklingError, match="past the end"):
        safe_pickle.rebuild_tensor(safe_pickle.load_legacy_storage(stream), 2, (4,), (1,))


def _payload(module, name, marker):
    """A pickle whose REDUCE would call module.name — the classic malicious-model shape."""
    arg = f"touch {marker}" if name in ("system", "Popen", "getoutput") else f"open({str(marker)!r}, 'w')"
    if name == "Popen":
        return b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps((arg.split(),), 2)[2:-1] + b"R."
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps((arg,), 2)[2:-1] + b"R."


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                         ("builtins", "exec"), ("subprocess", "Popen"), ("subprocess", "getoutput"),
                                         ("torch", "load"), ("numpy", "load"), ("builtins", "getattr")])
def test_malicious_globals_are_refused_and_nothing_runs(tmp_path, module, name):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.pkl"
    bad.write_bytes(_payload(module, name, marker))
    with pytest.raises(ModelFileError) as e:
        read_network(bad)
    assert str(e.value) == (f"model.pkl: refused to load: the file references the Python global '{module}.{name}', "
                            "which no StyleGAN model file needs (loading it could run code); nothing in the file "
                            "was run")
    assert not marker.exists()
    # The same bytes run through plain pickle would have executed (proves the payload is live).
    if (module, name) == ("os", "system"):
        pickle.loads(bad.read_bytes())
        assert marker.exists()


def test_malicious_global_hidden_in_a_tensor_storage_stream(tmp_path):
    marker = tmp_path / "pwned"
    inner = bytearray(legacy_storage_stream(np.zeros(2, np.float32)))
    inner = bytes(inner).replace(b"ctorch\nFloatStorage\n", b"cos\nsystem\n")
    bad = tmp_path / "inner.pkl"
    bad.write_bytes(_snapshot_with_storage(inner))
    with pytest.raises(ModelFileError, match="'os.system'"):
        read_network(bad)
    assert not marker.exists()


def _snapshot_with_storage(stream: bytes) -> bytes:
    class Storage:
        def __reduce__(self):
            return GlobalName("torch.storage", "_load_from_bytes"), (stream,)
    return dumps({"G_ema": Storage()}, 3)


def test_embedded_sources_are_never_executed(tmp_path):
    """NVIDIA module_src and TF build_module_src are exec'd by the official loaders; we only parse them."""
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').write('x')\n"
    G = make_generator()
    from tests.formats import nvidia_writer, tf_writer
    write_network_pickle(tmp_path / "pt.pkl", G, "ada", module_src=nvidia_writer.ADA_SRC + payload)
    write_tf_pickle(tmp_path / "tf.pkl", G, module_src=tf_writer.build_module_src() + payload)
    read_network(tmp_path / "pt.pkl")
    read_network(tmp_path / "tf.pkl")
    assert not marker.exists()


def test_torch_checkpoint_with_code_is_refused_by_weights_only(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"g_ema": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError) as e:
        read_network(tmp_path / "evil.pt")
    assert str(e.value) == ("evil.pt: refused to load: the file references the Python global 'posix.system', "
                            "which no StyleGAN model file needs (loading it could run code); nothing in the file "
                            "was run")
    assert not marker.exists()
