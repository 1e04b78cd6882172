"""Opcode-level pickle writing for fixtures: emit the exact global names NVIDIA's and TensorFlow's files contain.

NVIDIA's code is not available (and must never be imported), so fixtures cannot be made by pickling real
`torch_utils` / `dnnlib` objects. Instead `FixturePickler` (the pure-Python pickler) lets a `GlobalName` stand for any
`module.name` in the stream and writes it with the same GLOBAL / STACK_GLOBAL opcodes the real pickler would.
Tensors are emitted as torch pickles them (reference §1.4): `_rebuild_tensor_v2` of a storage that reduces to
`torch.storage._load_from_bytes(<complete legacy torch.save stream>)`.
"""
from __future__ import annotations

import collections
import io
import itertools
import pickle
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# torch writes these constants, not the host's sizes (torch/serialization.py SHORT_SIZE, INT_SIZE, LONG_SIZE).
LEGACY_SYS_INFO = dict(protocol_version=LEGACY_PROTOCOL, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
STORAGE_CLASS = {np.dtype("<f4"): "FloatStorage", np.dtype("<f2"): "HalfStorage", np.dtype("<f8"): "DoubleStorage",
                 np.dtype("<i8"): "LongStorage", np.dtype("<i4"): "IntStorage", np.dtype("u1"): "ByteStorage",
                 np.dtype("?"): "BoolStorage"}
_storage_keys = itertools.count(94279924534736)  # torch uses the storage's address as its key


class GlobalName:
    """`module.name` as it appears in a pickle stream, with nothing behind it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> Any:  # pickle's save_reduce insists the reducer is callable
        raise RuntimeError(f"{self.module}.{self.name} is a name in a fixture, not a function")


class FixturePickler(pickle._Pickler):
    """Pure-Python pickler that writes GlobalName objects as globals and EasyDict stand-ins as NEWOBJ + SETITEMS."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, (GlobalName, NewObjDict)):
            memo = self.memo.get(id(obj))
            if memo is not None:
                self.write(self.get(memo[0]))
                return
            if isinstance(obj, GlobalName):
                self._save_global_name(obj)
            else:
                self._save_newobj_dict(obj)
            return
        super().save(obj, save_persistent_id)

    def _save_global_name(self, g: GlobalName) -> None:
        if self.proto >= 4:
            self.save(g.module)
            self.save(g.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode("ascii"))
        self.memoize(g)

    def _save_newobj_dict(self, d: "NewObjDict") -> None:
        # What pickle writes for a dict subclass instance at protocol >= 2 (copyreg.__newobj__ path).
        self.save(d.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(d)
        self._batch_setitems(iter(d.items()))


class NewObjDict(dict):
    """A dict subclass instance (e.g. dnnlib.util.EasyDict) as it pickles: NEWOBJ of its class, then its items."""

    def __init__(self, cls: GlobalName, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cls = cls


def easydict(**kwargs: Any) -> NewObjDict:
    return NewObjDict(EASYDICT, **kwargs)


EASYDICT = GlobalName("dnnlib.util", "EasyDict")
REBUILD_TENSOR_V2 = GlobalName("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = GlobalName("torch._utils", "_rebuild_parameter")
LOAD_FROM_BYTES = GlobalName("torch.storage", "_load_from_bytes")
NUMPY_MODULE = "numpy.core.multiarray"  # what files written with numpy 1.x (every real one) say


class _StorageRoot:
    pass


def legacy_storage_stream(array: np.ndarray) -> bytes:
    """A complete legacy torch.save stream of one storage holding `array`'s elements (reference §1.4)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    storage_class = GlobalName("torch", STORAGE_CLASS[flat.dtype])
    key = str(next(_storage_keys))
    root = _StorageRoot()
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, LEGACY_SYS_INFO):
        FixturePickler(buf, protocol=2).dump(header)
    pickler = FixturePickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: ("storage", storage_class, key, "cpu", flat.size, None) if obj is root else None
    pickler.dump(root)
    FixturePickler(buf, protocol=2).dump([key])
    buf.write(flat.size.to_bytes(8, "little"))
    buf.write(flat.tobytes())
    return buf.getvalue()


class TorchStorage:
    def __init__(self, array: np.ndarray):
        self.array = array

    def __reduce__(self):
        return LOAD_FROM_BYTES, (legacy_storage_stream(self.array),)


class TorchTensor:
    """A CPU tensor as `torch.Tensor.__reduce_ex__` writes it; `strides` lets a fixture store a non-contiguous view."""

    def __init__(self, array: np.ndarray, channels_last: bool = False):
        self.array = np.asarray(array)
        self.channels_last = channels_last and self.array.ndim == 4

    def __reduce__(self):
        a = self.array
        if self.channels_last:  # stored NHWC in memory, viewed as NCHW: strides differ from the contiguous ones
            storage = np.ascontiguousarray(a.transpose(0, 2, 3, 1))
            n, c, h, w = a.shape
            stride = (h * w * c, 1, w * c, c)
        else:
            storage = np.ascontiguousarray(a)
            stride = tuple(int(s // a.itemsize) for s in storage.strides) if a.ndim else ()
        return REBUILD_TENSOR_V2, (TorchStorage(storage), 0, tuple(a.shape), stride, False, collections.OrderedDict())


class TorchParameter:
    def __init__(self, array: np.ndarray, channels_last: bool = False):
        self.tensor = TorchTensor(array, channels_last)

    def __reduce__(self):
        return REBUILD_PARAMETER, (self.tensor, False, collections.OrderedDict())


class NumpyDtype:
    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)

    def __reduce__(self):
        order = "|" if self.dtype.itemsize == 1 else "<"
        return (GlobalName("numpy", "dtype"), (self.dtype.str[1:], False, True),
                (3, order, None, None, None, -1, -1, 0))


class NumpyScalar:
    """A numpy scalar (e.g. the np.float64 `weight_gain` attributes) as numpy 1.x pickles it."""

    def __init__(self, value: Any, dtype: str = "<f8"):
        self.value = np.array(value, dtype=dtype)

    def __reduce__(self):
        return GlobalName(NUMPY_MODULE, "scalar"), (NumpyDtype(self.value.dtype), self.value.tobytes())


class NumpyArray:
    """An ndarray as numpy 1.x pickles it: _reconstruct(ndarray, (0,), b'b') then BUILD with the raw bytes."""

    def __init__(self, array: np.ndarray):
        self.array = np.ascontiguousarray(array)

    def __reduce__(self):
        a = self.array
        return (GlobalName(NUMPY_MODULE, "_reconstruct"), (GlobalName("numpy", "ndarray"), (0,), b"b"),
                (1, tuple(a.shape), NumpyDtype(a.dtype), False, a.tobytes()))


def dump(obj: Any, file: Any, protocol: int) -> None:
    FixturePickler(file, protocol=protocol).dump(obj)


def dumps(obj: Any, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    dump(obj, buf, protocol)
    return buf.getvalue()
