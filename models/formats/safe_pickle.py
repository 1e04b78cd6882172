"""Restricted unpickling: read NVIDIA and TensorFlow network pickles without running anything they contain.

A plain `pickle.load` of an NVIDIA network pickle `exec`s the Python source embedded in it (reference §1.1), and a
TensorFlow pickle does the same with its `build_module_src` (§3.1). Here every global the stream names goes through
an allow-list (§1.5): the few functions and classes a real file needs are answered with inert stand-ins, anything
else stops the load with `RefusedGlobal` before it can be called. Tensors come back as numpy arrays that view the
bytes of the pickle itself, so a 380 MB file is not copied again.
"""
from __future__ import annotations

import collections
import hashlib
import io
import pickle
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (non-zip) torch.save stream
LEGACY_PROTOCOL = 1001
PERSISTENCE_VERSION = 6  # torch_utils.persistence._version in stylegan2-ada-pytorch and stylegan3

# torch's legacy storage classes and the numpy dtype of their elements (little-endian, as written on x86/ARM).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "DoubleStorage": np.dtype("<f8"),
    "BFloat16Storage": np.dtype("<u2"),  # numpy has no bfloat16: read the raw halves, widen below
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The stream names a Python global that no model file needs. Nothing from the file has run."""

    def __init__(self, module: str, name: str):
        self.global_name = f"{module}.{name}"
        super().__init__(
            f"refused to load: the file references the Python global '{self.global_name}', which no StyleGAN "
            "model file needs (loading it could run code); nothing in the file was run"
        )


class PersistentObject:
    """What `torch_utils.persistence._reconstruct_persistent_obj(meta)` would have rebuilt, kept as data.

    The real function execs `module_src` and instantiates `class_name` from it; we keep the source only to identify
    it (by hash and by what it defines) and the instance `__dict__` (`state`) to read weights and settings from.
    """

    def __init__(self, class_name: str, module_src: str, state: dict):
        self.class_name = class_name
        self.module_src = module_src
        self.state = state

    @property
    def module_src_sha256(self) -> str:
        return hashlib.sha256(self.module_src.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name}, src {self.module_src_sha256[:12]})"


class TFNetwork:
    """Stand-in for `dnnlib.tflib.network.Network`: pickle's BUILD hands us the `__getstate__` dict, kept as is."""

    def __init__(self) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a TensorFlow Network's state is a {type(state).__name__}, not a dict")
        self.state = state

    def __repr__(self) -> str:
        return f"TFNetwork({self.state.get('name')!r}, version {self.state.get('version')!r})"


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access); pickle fills it with SETITEMS."""


# ---------------------------------------------------------------------------------------------------------------
# Tensors: torch._utils._rebuild_tensor_v2(storage, ...) of torch.storage._load_from_bytes(legacy stream)


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _StorageSlot:
    """A storage named by a persistent id; its elements follow the pickles in the stream."""

    def __init__(self, storage_type: _StorageType, key: str, numel: int):
        self.storage_type = storage_type
        self.key = key
        self.numel = numel
        self.array: np.ndarray | None = None


class _LegacyStreamUnpickler(pickle.Unpickler):
    """Reads the small pickles of one legacy torch.save stream; only storage classes may be named."""

    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self.slots: dict[str, _StorageSlot] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise RefusedGlobal(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id in a tensor storage stream: {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]  # location ('cpu', 'cuda:0') does not matter here
        view_metadata = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise pickle.UnpicklingError(f"malformed storage record in a tensor stream: {pid!r:.80}")
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views (written by torch before 0.4) are not supported")
        if key not in self.slots:
            self.slots[key] = _StorageSlot(storage_type, key, numel)
        return self.slots[key]


def load_legacy_storage(stream: bytes) -> np.ndarray:
    """Parse a complete legacy torch.save stream holding one storage (reference §1.4) → 1-D array viewing `stream`."""
    if not isinstance(stream, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"tensor storage bytes are a {type(stream).__name__}, not bytes")
    f = io.BytesIO(stream)  # shares the buffer with `stream`; no copy
    unpickler = _LegacyStreamUnpickler(f)
    try:
        magic, protocol, sys_info = unpickler.load(), unpickler.load(), unpickler.load()
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise pickle.UnpicklingError("a tensor storage is not a legacy torch.save stream (bad magic number)")
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise pickle.UnpicklingError("a tensor storage was written on a big-endian machine; not supported")
        root = unpickler.load()
        keys = unpickler.load()
    except EOFError:
        raise pickle.UnpicklingError("a tensor storage stream is truncated") from None
    if not isinstance(root, _StorageSlot) or not isinstance(keys, list) or set(keys) != set(unpickler.slots):
        raise pickle.UnpicklingError("a tensor storage stream does not hold exactly one storage")
    pos = f.tell()
    for key in keys:
        slot = unpickler.slots[key]
        if pos + 8 > len(stream):
            raise pickle.UnpicklingError("a tensor storage stream is truncated")
        numel = int.from_bytes(stream[pos:pos + 8], "little")
        pos += 8
        nbytes = numel * slot.storage_type.dtype.itemsize
        if numel != slot.numel or pos + nbytes > len(stream):
            raise pickle.UnpicklingError("a tensor storage stream is truncated or its element count is wrong")
        slot.array = np.frombuffer(stream, dtype=slot.storage_type.dtype, count=numel, offset=pos)
        pos += nbytes
    array = root.array
    if root.storage_type.name == "BFloat16Storage":
        array = (array.astype("<u4") << 16).view("<f4")  # bfloat16 is the top half of a float32
    return array


def _as_dims(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of non-negative ints: {value!r:.80}")
    return tuple(value)


def rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> np.ndarray:
    """`torch._utils._rebuild_tensor_v2` → numpy view of the storage (extra args: requires_grad, hooks, metadata)."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise pickle.UnpicklingError("a tensor's storage is not a tensor storage")
    size, stride = _as_dims(size, "size"), _as_dims(stride, "stride")
    if not isinstance(storage_offset, int) or storage_offset < 0 or len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor's offset or stride does not fit its size")
    numel = int(np.prod(size, dtype=np.int64))
    if numel == 0:
        return np.empty(size, dtype=storage.dtype)
    # A view that reads past its storage would read other memory: check before any numpy view is made.
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    contiguous = np.cumprod((1,) + size[:0:-1])[::-1]
    if all(n == 1 or s == c for n, s, c in zip(size, stride, contiguous)):
        return storage[storage_offset:storage_offset + numel].reshape(size)
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=[s * itemsize for s in stride], writeable=False)


def rebuild_tensor_v1(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
    return rebuild_tensor(storage, storage_offset, size, stride)


def rebuild_parameter(data: Any, *_ignored: Any) -> np.ndarray:
    """`torch._utils._rebuild_parameter[_with_state]`: a Parameter is its data here."""
    if not isinstance(data, np.ndarray):
        raise pickle.UnpicklingError("a Parameter's data is not a tensor")
    return data


def reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """Inert `torch_utils.persistence._reconstruct_persistent_obj`: records the object, never execs its source."""
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError("a persistent object's record is not a dict")
    if meta.get("type") != "class":
        raise pickle.UnpicklingError(f"persistent object of type {meta.get('type')!r}; only 'class' is known")
    if meta.get("version") != PERSISTENCE_VERSION:
        raise pickle.UnpicklingError(
            f"persistence format version {meta.get('version')!r}; dnebot reads version {PERSISTENCE_VERSION} "
            "(stylegan2-ada-pytorch and stylegan3 network pickles)")
    class_name, module_src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(module_src, str) or not isinstance(state, dict):
        raise pickle.UnpicklingError("a persistent object's record lacks class_name, module_src or state")
    return PersistentObject(class_name, module_src, state)


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it to spell bytes; nothing else is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal("_codecs", "encode")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric  # numpy >= 2; pickles from 2021 say numpy.core
    found = {}
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    found[("numpy", "dtype")] = np.dtype
    found[("numpy", "ndarray")] = np.ndarray
    return found


NETWORK_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor_v1,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): load_legacy_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): _latin1_bytes,
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` answers only from NETWORK_GLOBALS (the table of reference §1.5)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return NETWORK_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("a network pickle does not use persistent ids; this looks like a torch.save file")


def load(file: BinaryIO) -> Any:
    """Unpickle one object from `file` through the allow-list."""
    return RestrictedUnpickler(file).load()
