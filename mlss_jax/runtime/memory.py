"""Out-of-memory on the device as a user error that names the setting to lower.

XLA reports an allocation it cannot make as a runtime error ("RESOURCE_EXHAUSTED: Out of
memory while trying to allocate ..." on GPUs, "Out of memory allocating ..." on CPUs), raised
where the computation is dispatched or its result read. :func:`names_setting` turns it into
:class:`OutOfMemory`, which says which work ran out and which setting sizes it; the command
line reports it in one line with the setting's flag.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Callable, Iterator, TypeVar

import jax

from mlss_jax.errors import ResourceError

_OUT_OF_MEMORY = re.compile(r"RESOURCE_EXHAUSTED|out of memory", re.IGNORECASE)
F = TypeVar("F", bound=Callable)


class OutOfMemory(ResourceError):
    """The device ran out of memory in ``work``, whose size ``setting`` (a config field, now
    ``value``) sets."""

    def __init__(self, work: str, setting: str, value: object, detail: str) -> None:
        super().__init__(work, setting, value, detail)
        self.work, self.setting, self.value, self.detail = work, setting, value, detail
        self.device = jax.devices()[0].device_kind
        self.advice = ""   # what else to do, added by whoever knows (e.g. a trainer)

    def __str__(self) -> str:
        return (f"out of memory on {self.device} in {self.work} at {self.setting} {self.value} "
                f"({self.detail}); lower {self.setting}{self.advice}")


def is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, jax.errors.JaxRuntimeError) and bool(_OUT_OF_MEMORY.search(str(err)))


@contextlib.contextmanager
def names_setting(work: str, setting: str, value: object) -> Iterator[None]:
    """Raise :class:`OutOfMemory` for an out-of-memory error inside the block (an inner block's
    :class:`OutOfMemory` passes through: the innermost names the setting)."""
    try:
        yield
    except jax.errors.JaxRuntimeError as err:
        if not is_out_of_memory(err):
            raise
        text = str(err)
        found = re.search("out of memory", text, re.IGNORECASE) or _OUT_OF_MEMORY.search(text)
        detail = text[found.start():].splitlines()[0].rstrip(".")
        raise OutOfMemory(work, setting, value, detail) from None


def naming_setting(fn: F, work: str, setting: str, value: object) -> F:
    """``fn`` with its out-of-memory errors as :class:`OutOfMemory` (see :func:`names_setting`)."""
    def wrapped(*args, **kwargs):
        with names_setting(work, setting, value):
            return fn(*args, **kwargs)
    return wrapped


def memory_limit(device: bool = False) -> int:
    """Bytes of this machine's physical memory; with ``device``, the first accelerator's if it
    has less (a CPU device shares the host's)."""
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if device:
        stats = jax.local_devices()[0].memory_stats() or {}  # this process's own device
        limit = min(limit, stats.get("bytes_limit", limit))
    return limit
