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
import zipfile
from typing import Any, Callable

import ml_dtypes
import numpy as np

from mlss_jax.config import quote_error
from mlss_jax.errors import InputFileError


class NetworkPickleError(InputFileError, ValueError):
    """A network pickle that cannot be read (base class of the errors below); a ``ValueError``
    too, as it was before the project had :mod:`mlss_jax.errors`."""


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
    """A storage named in a torch record; its data follows the record (or sits in the zip)."""

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _PendingTensor:
    """``torch._utils._rebuild_tensor_v2`` called before its storage's data is known."""

    def __init__(self, storage: Any, storage_offset: Any = 0, size: Any = (), stride: Any = (),
                 *_ignored: Any) -> None:
        if not isinstance(storage, _PendingStorage):
            raise CorruptPickleError("torch tensor without a storage record")
        self.storage, self.args = storage, (storage_offset, size, stride)


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"refused global {module}.{name}")


class _TorchRecordUnpickler(pickle.Unpickler):
    """The pickled object of a ``torch.save`` file (a storage, a tensor or a state dict):
    tensors refer to storages by persistent id; numbers, strings and containers only."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, encoding="latin1")
        self.storages: dict[str, _PendingStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _TorchStorageType(name)
        allowed = {("collections", "OrderedDict"): collections.OrderedDict,
                   ("torch._utils", "_rebuild_tensor_v2"): _PendingTensor,
                   ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}
        if (module, name) in allowed:
            return allowed[(module, name)]
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
        return self.storages.setdefault(key, _PendingStorage(key, storage_type.dtype, numel))


def _resolve_storages(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace pending storages and tensors in a torch record by numpy arrays."""
    if isinstance(obj, _PendingStorage):
        return arrays[obj.key]
    if isinstance(obj, _PendingTensor):
        return _rebuild_tensor_v2(arrays[obj.storage.key], *obj.args)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve_storages(v, arrays)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_storages(v, arrays) for v in obj)
    return obj


def _read_legacy_torch(stream: io.BytesIO) -> Any:
    """A legacy (non-zip) ``torch.save`` stream: pickled magic number, protocol version and
    system info; the pickled record; the pickled list of storage keys; then per key an
    int64 element count and the raw elements."""
    if _NoGlobalsUnpickler(stream).load() != _TORCH_LEGACY_MAGIC:
        raise CorruptPickleError("torch data has a wrong magic number "
                                 "(expected the legacy torch.save format)")
    if _NoGlobalsUnpickler(stream).load() != _TORCH_LEGACY_PROTOCOL:
        raise CorruptPickleError("unsupported torch protocol version")
    sys_info = _NoGlobalsUnpickler(stream).load()
    if not isinstance(sys_info, dict):
        raise CorruptPickleError("malformed torch system info")
    byte_order = "<" if sys_info.get("little_endian", True) else ">"
    record = _TorchRecordUnpickler(stream)
    root = record.load()
    keys = _NoGlobalsUnpickler(stream).load()
    if not isinstance(keys, list):
        raise CorruptPickleError("malformed torch storage key list")
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
        arrays[key] = _storage_array(stream.read(numel * pending.dtype.itemsize), pending, byte_order)
    if set(record.storages) - set(arrays):
        raise CorruptPickleError("torch storage data is missing")
    return _resolve_storages(root, arrays)


def _storage_array(data: bytes, pending: _PendingStorage, byte_order: str) -> np.ndarray:
    if len(data) != pending.numel * pending.dtype.itemsize:
        raise CorruptPickleError("torch storage data is truncated")
    return np.frombuffer(data, dtype=pending.dtype.newbyteorder(byte_order)).astype(pending.dtype)


def _read_zip_torch(data: bytes) -> Any:
    """A zip ``torch.save`` file (torch >= 1.6): ``<name>/data.pkl`` is the record and
    ``<name>/data/<key>`` each storage's raw bytes."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        records = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(records) != 1:
            raise CorruptPickleError("torch zip file without exactly one data.pkl")
        prefix = records[0][:-len("data.pkl")]
        byte_order = "<"
        if prefix + "byteorder" in names:
            byte_order = "<" if archive.read(prefix + "byteorder").strip() == b"little" else ">"
        record = _TorchRecordUnpickler(io.BytesIO(archive.read(records[0])))
        root = record.load()
        arrays = {}
        for key, pending in record.storages.items():
            if prefix + f"data/{key}" not in names:
                raise CorruptPickleError(f"torch zip file lacks storage {key!r:.40}")
            arrays[key] = _storage_array(archive.read(prefix + f"data/{key}"), pending, byte_order)
    except zipfile.BadZipFile as err:
        raise CorruptPickleError(f"corrupt torch zip file ({err})") from None
    return _resolve_storages(root, arrays)


def _decode(read: Callable[[], Any], what: str) -> Any:
    """Run a decoder; any failure of malformed input becomes a :class:`CorruptPickleError`."""
    try:
        return read()
    except NetworkPickleError:
        raise
    except RecursionError:
        raise CorruptPickleError(f"{what} is nested too deeply") from None
    except MemoryError:
        raise CorruptPickleError(f"{what} asks for more memory than is available") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, struct.error, UnicodeDecodeError) as err:
        raise CorruptPickleError(f"corrupt or truncated {what} ({quote_error(err, 120)})") from None


def load_torch_file(data: bytes) -> Any:
    """What ``torch.load`` would return for a file of tensors (e.g. a state dict), as numpy
    arrays, without torch: the zip format and the legacy one; only the torch globals that
    rebuild tensors are allowed."""
    if data[:4] == b"PK\x03\x04":
        return _decode(lambda: _read_zip_torch(data), "torch data")
    return _decode(lambda: _read_legacy_torch(io.BytesIO(data)), "torch data")


def decode_torch_storage(blob: Any) -> np.ndarray:
    """Decode the bytes of ``torch.storage._load_from_bytes`` (a legacy ``torch.save`` of one
    storage) into a flat numpy array."""
    if not isinstance(blob, (bytes, bytearray)):
        raise CorruptPickleError("torch storage payload is not bytes")
    storage = _read_legacy_torch(io.BytesIO(bytes(blob)))
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise CorruptPickleError("torch storage payload does not hold one storage")
    return storage


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


# how other files a network pickle may be mistaken for begin
_SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
               (b"GIF8", "a GIF image"),
               (b"PK\x03\x04", "a zip archive (torch.save's format, or NumPy's .npz)"),
               (b"\x93NUMPY", "a NumPy .npy array"), (b"\x1f\x8b", "gzip-compressed"),
               (b"\x89HDF", "an HDF5 file"), (b"{", "JSON text"))


def _check_pickle_start(data: bytes) -> None:
    """Network pickles are pickle protocol 2 or later: they begin with the PROTO opcode."""
    if data[:1] == b"\x80":
        return
    what = next((kind for start, kind in _SIGNATURES if data.startswith(start)), None)
    raise CorruptPickleError("not a network pickle: " + (
        "the file is empty" if not data else f"the file is {what}" if what else
        f"the file does not begin like a pickle ({data[:8]!r})"))


def load_network_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with the allowlist; raise :class:`NetworkPickleError` on any problem."""
    _check_pickle_start(data)
    # BytesIO: a huge length field can only read up to the end of the data.
    return _decode(lambda: _AllowlistUnpickler(io.BytesIO(data), encoding="latin1").load(), "pickle")
