"""Hostile and broken pickles are refused without executing anything."""

from __future__ import annotations

import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from conftest import fixture_path
from mlss_jax.weights.nvidia import convert_network_pickle
from mlss_jax.weights.safe_pickle import (CorruptPickleError, NetworkPickleError, UnsafePickleError,
                                          decode_torch_storage, load_network_pickle)
from pickles import dump_pt, dump_tf, pt_fixture, tf_fixture


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_os_system_through_reduce_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"G_ema": _RunsShell(marker)})
    with pytest.raises(UnsafePickleError, match=r"refused global (posix|os|nt)\.system"):
        load_network_pickle(data)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("collections", "Counter"),
                                          ("subprocess", "Popen"), ("torch", "load"),
                                          ("dnnlib.util", "open_url")])
def test_unknown_global_is_named_in_the_error(module, name):
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    with pytest.raises(UnsafePickleError, match=f"refused global {module}.{name}"):
        load_network_pickle(data)


@pytest.mark.parametrize("opcode", [b"\x8e", b"\x8d"])  # BINBYTES8, BINUNICODE8
def test_huge_length_field_is_a_clean_error(opcode):
    data = b"\x80\x04" + opcode + struct.pack("<Q", 2 ** 62) + b"abc"
    with pytest.raises(CorruptPickleError):
        load_network_pickle(data)


class _HugeArray:
    """Pickles like a numpy array whose state claims 2**40 elements but holds 16 bytes."""

    def __reduce__(self):
        state = (1, (2 ** 40,), np.dtype("float32"), False, b"\0" * 16)
        return np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, (0,), b"b"), state


def test_huge_array_shape_with_little_data_is_refused():
    data = pickle.dumps(_HugeArray(), protocol=4)
    with pytest.raises(CorruptPickleError):
        load_network_pickle(data)


def test_object_arrays_are_refused():
    data = pickle.dumps(np.array([1, "x"], dtype=object))
    with pytest.raises(UnsafePickleError, match="non-numeric"):
        load_network_pickle(data)


def test_persistent_ids_are_refused_at_top_level():
    data = b"\x80\x02X\x03\x00\x00\x00abcQ."  # BINPERSID
    with pytest.raises(UnsafePickleError, match="persistent id"):
        load_network_pickle(data)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.5, 0.999])
def test_truncated_fixture_is_corrupt_not_a_crash(fraction):
    data = fixture_path("pt_small.pkl").read_bytes()
    with pytest.raises(NetworkPickleError):
        load_network_pickle(data[:int(len(data) * fraction)])


def test_tf_build_module_src_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    nets = tf_fixture()
    for net in nets:
        net.build_module_src = f"open({str(marker)!r}, 'w').write('x')\n"
    converted = convert_network_pickle(dump_tf(nets))
    assert converted.source_format == "tensorflow"
    assert not marker.exists()


def test_pt_module_src_is_never_executed():
    # dump_pt embeds module_src that would raise SystemExit if executed.
    converted = convert_network_pickle(dump_pt(pt_fixture()))
    assert converted.source_format == "pytorch"


def _storage_blob() -> bytes:
    """The first torch storage payload (legacy torch.save bytes) in the PyTorch fixture."""
    data = fixture_path("pt_small.pkl").read_bytes()
    for opcode, arg, _ in pickletools.genops(data):
        if "BYTES" in opcode.name and arg.startswith(b"\x80\x02\x8a\x0a"):
            return arg
    raise AssertionError("no torch storage in the fixture")


def test_torch_storage_decoding_and_its_checks():
    blob = _storage_blob()
    array = decode_torch_storage(blob)
    assert array.dtype == np.float32 and array.ndim == 1
    (numel,) = struct.unpack("<q", blob[-4 * array.size - 8:-4 * array.size])
    assert numel == array.size
    np.testing.assert_array_equal(array, np.frombuffer(blob[-4 * array.size:], "<f4"))
    with pytest.raises(CorruptPickleError, match="truncated"):
        decode_torch_storage(blob[:-1])
    with pytest.raises(CorruptPickleError, match="magic"):
        decode_torch_storage(pickle.dumps(12345, protocol=2) + blob[14:])


def test_tensor_past_its_storage_is_refused():
    from mlss_jax.weights.safe_pickle import _rebuild_tensor_v2

    storage = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(_rebuild_tensor_v2(storage, 0, (2, 3), (3, 1)),
                                  storage.reshape(2, 3))
    np.testing.assert_array_equal(_rebuild_tensor_v2(storage, 1, (2, 2), (1, 2)),
                                  [[1, 3], [2, 4]])
    with pytest.raises(CorruptPickleError, match="past its storage"):
        _rebuild_tensor_v2(storage, 1, (2, 3), (3, 1))
