"""Reading NVIDIA network pickles without executing anything they contain.

A network pickle is untrusted input: an ordinary ``pickle.load`` would import and
call whatever globals the file names (``os.system`` through ``__reduce__``, or
NVIDIA's own ``build_module_src`` / ``module_src``, which their loaders ``exec``).
The unpickler here resolves only an allowlist of globals, each mapped to an inert
stand-in or to this module's own decoder:

* numpy array and scalar reconstruction, restricted to numeric dtypes;
* ``collections.OrderedDict``;
* NVIDIA's class paths: ``dnnlib.tflib.network.Network`` becomes a
  :class:`TFNetworkState`, ``torch_utils.persistence._reconstruct_persistent_obj``
  a :class:`PersistentModule` (its ``module_src`` is kept as text, never run),
  ``dnnlib``'s ``EasyDict`` a plain ``dict``;
* torch's tensor, parameter and storage rebuild functions, decoded with numpy
  (torch is not needed, and not imported).

Every other global is refused with an error that names it.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from typing import Any, Callable

import ml_dtypes
import numpy as np


class NetworkPickleError(ValueError):
    """A network pickle that cannot be read (base class of the errors below)."""


class UnsafePickleError(NetworkPickleError):
    """The pickle names a global that is not on the allowlist."""


class CorruptPickleError(NetworkPickleError):
    """The pickle is truncated, malformed or internally inconsistent."""


_NUMERIC_KINDS = "biufc"


class TFNetworkState:
    """Inert stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict."""

    def __init__(self) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CorruptPickleError("dnnlib.tflib.network.Network state is not a dict")
        self.state = state


class PersistentModule:
    """Inert stand-in for a ``torch_utils.persistence`` object (an ``nn.Module``).

    ``state`` is the module's ``__dict__``: ``_parameters``, ``_buffers`` and
    ``_modules`` hold its tensors (numpy arrays here) and children.
    """

    def __init__(self, class_name: str, state: dict) -> None:
        self.class_name = class_name
        self.state = state

    def __repr__(self) -> str:
        return f"PersistentModule({self.class_name})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentModule:
    if not (isinstance(meta, dict) and isinstance(meta.get("class_name"), str)
            and isinstance(meta.get("state"), dict)):
        raise CorruptPickleError("torch_utils.persistence object without class_name/state")
    # meta["module_src"] is NVIDIA's network source code: deliberately ignored.
    return PersistentModule(meta["class_name"], meta["state"])


def _numeric_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError(f"refused non-numeric array dtype {dtype!r}")
    return dtype


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str):
        raise UnsafePickleError(f"refused numpy dtype spec of type {type(spec).__name__}")
    try:
        # copy=True: the BUILD that follows (byte order) must not touch numpy's singletons.
        dtype = np.dtype(spec, bool(align), True)
    except TypeError as err:
        raise CorruptPickleError(f"bad numpy dtype {spec!r}") from err
    return _numeric_dtype(dtype)


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafePickleError(f"refused array reconstruction of {cls!r}")
    # An empty array; the pickle's BUILD then calls ndarray.__setstate__, which
    # checks that the raw byte count matches shape and (numeric) dtype.
    return np.ndarray((0,), dtype=np.uint8)


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    dtype = _numeric_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise CorruptPickleError("bad numpy scalar payload")
    return np.frombuffer(data, dtype=dtype)[0]


# --- torch, without torch -------------------------------------------------------------

_TORCH_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _TorchStorageType:
    """Stand-in for a class such as ``torch.FloatStorage``: only its element dtype matters."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _TORCH_STORAGE_DTYPES[name]


class _PendingStorage:
    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"refused global {module}.{name}")


class _TorchStorageUnpickler(pickle.Unpickler):
    """The main record of a legacy ``torch.save(storage)``: one storage, by persistent id."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _PendingStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _TorchStorageType(name)
        raise UnsafePickleError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> _PendingStorage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CorruptPickleError(f"unexpected torch persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _TorchStorageType) or not isinstance(key, str):
            raise CorruptPickleError("malformed torch storage record")
        if not isinstance(numel, int) or numel < 0:
            raise CorruptPickleError("malformed torch storage size")
        if view is not None:
            raise CorruptPickleError("torch storage views (very old torch) are not supported")
        pending = self.storages.setdefault(key, _PendingStorage(key, storage_type.dtype, numel))
        return pending


def decode_torch_storage(blob: Any) -> np.ndarray:
    """Decode the bytes of ``torch.storage._load_from_bytes`` into a flat numpy array.

    The bytes are a legacy (non-zip) ``torch.save`` of one storage: pickled magic
    number, protocol version and system info; the pickled storage record; the
    pickled list of storage keys; then per key an int64 element count and the raw
    little-endian elements.
    """
    if not isinstance(blob, (bytes, bytearray)):
        raise CorruptPickleError("torch storage payload is not bytes")
    stream = io.BytesIO(bytes(blob))
    if _NoGlobalsUnpickler(stream).load() != _TORCH_LEGACY_MAGIC:
        raise CorruptPickleError("torch storage payload has a wrong magic number "
                                 "(only the legacy torch.save format is supported)")
    if _NoGlobalsUnpickler(stream).load() != _TORCH_LEGACY_PROTOCOL:
        raise CorruptPickleError("unsupported torch storage protocol version")
    sys_info = _NoGlobalsUnpickler(stream).load()
    if not isinstance(sys_info, dict):
        raise CorruptPickleError("malformed torch storage system info")
    byte_order = "<" if sys_info.get("little_endian", True) else ">"
    record = _TorchStorageUnpickler(stream)
    root = record.load()
    keys = _NoGlobalsUnpickler(stream).load()
    if not isinstance(root, _PendingStorage) or not isinstance(keys, list):
        raise CorruptPickleError("torch storage payload does not hold one storage")
    arrays = {}
    for key in keys:
        pending = record.storages.get(key)
        if pending is None:
            raise CorruptPickleError(f"torch storage key {key!r:.40} has no record")
        header = stream.read(8)
        if len(header) != 8:
            raise CorruptPickleError("torch storage data is truncated")
        (numel,) = struct.unpack(byte_order + "q", header)
        if numel != pending.numel:
            raise CorruptPickleError("torch storage size does not match its record")
        dtype = pending.dtype.newbyteorder(byte_order)
        data = stream.read(numel * dtype.itemsize)
        if len(data) != numel * dtype.itemsize:
            raise CorruptPickleError("torch storage data is truncated")
        arrays[key] = np.frombuffer(data, dtype=dtype).astype(pending.dtype)
    if root.key not in arrays:
        raise CorruptPickleError("torch storage data is missing")
    return arrays[root.key]


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and v >= 0 for v in value):
        return tuple(value)
    raise CorruptPickleError(f"malformed torch tensor {what}")


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> np.ndarray:
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise CorruptPickleError("torch tensor without a decoded storage")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if not isinstance(storage_offset, int) or storage_offset < 0 or len(size) != len(stride):
        raise CorruptPickleError("malformed torch tensor layout")
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise CorruptPickleError("torch tensor extends past its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size,
        strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> Any:
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("dnnlib.tflib.network", "Network"): TFNetworkState,
    ("dnnlib", "EasyDict"): dict,
    ("dnnlib.util", "EasyDict"): dict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): decode_torch_storage,
}


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused persistent id in a network pickle")


def load_network_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with the allowlist; raise :class:`NetworkPickleError` on any problem."""
    try:
        # BytesIO: a huge length field can only read up to the end of the data.
        return _AllowlistUnpickler(io.BytesIO(data), encoding="latin1").load()
    except NetworkPickleError:
        raise
    except RecursionError:
        raise CorruptPickleError("pickle is nested too deeply") from None
    except MemoryError:
        raise CorruptPickleError("pickle asks for more memory than is available") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, struct.error, UnicodeDecodeError) as err:
        raise CorruptPickleError(f"corrupt or truncated pickle ({type(err).__name__}: "
                                 f"{str(err)[:120]})") from None
