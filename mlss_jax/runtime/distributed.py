"""Several cooperating processes (JAX's multi-controller runtime, ``jax.distributed``).

Every process runs the same program. After :func:`join`, ``jax.devices()`` spans every
process's devices, so the data mesh (``runtime.parallel.data_mesh``) does too. The trainers
draw each step's randomness for the *global* batch inside the jitted step; XLA computes
on each device only that device's shard of it, so no process builds another's share and
the numbers do not depend on how many processes share a run.

Process 0 writes logs, previews, metrics and reports; orbax writes checkpoints once for
the whole run. A watchdog stops every process within ``peer_timeout`` seconds when one of
them dies, with one line naming it, instead of leaving the others blocked in a collective.

JAX's runtime is global to the process; so is this module's watchdog (``_WATCH``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import jax
import numpy as np

from mlss_jax.config import check_positive
from mlss_jax.errors import ConfigError, ResourceError

KEY_PREFIX = "mlss_jax"
BEAT_SECONDS = 1.0


class DistributedError(ResourceError):
    """The processes of a run could not start or keep working together."""


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a run of several processes; the defaults run one process alone.

    Attributes:
      coordinator: HOST:PORT where process 0 serves the run's coordination service (with
        --num-processes and --process-id).
      num_processes: how many processes share the run.
      process_id: this process's index, 0 .. num_processes - 1; process 0 hosts the coordinator.
      distributed: let JAX find the cluster's settings itself (SLURM, Open MPI, Kubernetes,
        TPU pods) instead of the three flags above.
      peer_timeout: seconds to wait for the coordinator at start, and after which a silent
        process counts as lost and the others stop.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    distributed: bool = False
    peer_timeout: int = 60

    def __post_init__(self) -> None:
        check_positive(self, ("peer_timeout",))
        explicit = (self.coordinator, self.num_processes, self.process_id)
        given = [x is not None for x in explicit]
        if any(given) and not all(given):
            raise ConfigError("coordinator needs --num-processes and --process-id too (or use "
                              "--distributed for a cluster JAX detects)")
        if self.distributed and any(given):
            raise ConfigError("distributed detects the cluster; do not combine it with "
                              "--coordinator/--num-processes/--process-id")
        if not any(given):
            return
        host, _, port = self.coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"coordinator must be HOST:PORT, got {self.coordinator!r}")
        if self.num_processes < 1:
            raise ConfigError(f"num_processes must be >= 1, got {self.num_processes}")
        if not 0 <= self.process_id < self.num_processes:
            raise ConfigError(f"process_id must be in 0..{self.num_processes - 1}, "
                              f"got {self.process_id}")

    @property
    def enabled(self) -> bool:
        return self.distributed or self.coordinator is not None


class _PeerWatch:
    """Beats (a counter in the coordinator's key-value store) and watches the others' beats.

    One thread talks to the coordinator, another only reads clocks, so a blocked call
    cannot hide a lost process. A process that finished (:func:`leave`) is not watched.
    """

    def __init__(self, client, process_id: int, num_processes: int, timeout: float) -> None:
        self.client, self.me, self.n, self.timeout = client, process_id, num_processes, timeout
        now = time.monotonic()
        self.last_contact = now                       # last answer from the coordinator
        self.last_change = dict.fromkeys(range(num_processes), now)
        self.beats: dict[int, str] = {}
        self.done: set[int] = set()
        self.failed: set[int] = set()
        self.exiting: set[int] = set()
        self.stopped = False
        self.threads = [threading.Thread(target=target, daemon=True, name=f"mlss-{target.__name__}")
                        for target in (self._beat, self._check)]
        for thread in self.threads:
            thread.start()

    def _beat(self) -> None:
        count = 0
        while not self.stopped:
            count += 1
            try:
                self.client.key_value_set(f"{KEY_PREFIX}/alive/{self.me}", str(count),
                                          allow_overwrite=True)
                now = time.monotonic()
                # one read of every process's keys: <prefix>/<alive|done|failed>/<process>
                for key, value in self.client.key_value_dir_get(f"{KEY_PREFIX}/"):
                    kind, peer = key.split("/")[-2], int(key.rsplit("/", 1)[-1])
                    if kind == "done":
                        self.done.add(peer)
                    elif kind == "failed":
                        self.failed.add(peer)
                    elif kind == "exiting":
                        self.exiting.add(peer)
                    elif self.beats.get(peer) != value:
                        self.beats[peer], self.last_change[peer] = value, now
                self.last_contact = now
            except Exception:  # the coordinator is unreachable: _check decides when to give up
                pass
            time.sleep(BEAT_SECONDS)

    def _check(self) -> None:
        while not self.stopped:
            time.sleep(BEAT_SECONDS)
            now = time.monotonic()
            if self.me != 0 and now - self.last_contact > self.timeout:
                self._lost(0, "the coordinator")
            for peer, changed in self.last_change.items():
                if (peer != self.me and peer not in self.done | self.exiting
                        and now - changed > self.timeout):
                    self._lost(peer, "")

    def all_finished(self) -> bool:
        """Every process is done or failed, this one counted as finished (it is leaving)."""
        return len(self.done | self.failed | {self.me}) >= self.n

    def stop(self) -> None:
        """End both threads before the interpreter does. A daemon thread that returns from a
        call into JAX's client while Python finalizes is unwound by force through C++ frames,
        which aborts the process (SIGABRT, "FATAL: exception not rethrown")."""
        self.stopped = True
        for thread in self.threads:
            thread.join(timeout=BEAT_SECONDS + self.timeout)

    def _lost(self, peer: int, what: str) -> None:
        if self.stopped:
            return
        role = f" ({what})" if what else ""
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        _exit_now(1, f"{prog}: error: lost process {peer}{role} of {self.n}: no sign of life "
                     f"for {self.timeout:g} s; stopping process {self.me}")


_WATCH: _PeerWatch | None = None


def _exit_now(code: int, line: str | None = None) -> None:
    """Print ``line`` and end this process at once, without JAX's shutdown barrier (which
    would wait for, and then abort over, a lost process)."""
    if line:
        print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def join(config: DistributedConfig) -> None:
    """Join the run ``config`` describes (nothing to do for a single process)."""
    global _WATCH
    if not config.enabled or _WATCH is not None:
        return
    # collectives between CPU devices of different processes (the tests; GPUs use NCCL)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = config.coordinator or "the cluster's coordinator"
    if config.coordinator is not None:
        _check_coordinator(config)
    elif detected_cluster() is None:
        raise DistributedError(
            "--distributed found no cluster here: JAX detects processes started by SLURM's "
            "srun, Open MPI 4's mpirun, Kubernetes (with the kubernetes package) and Cloud TPU "
            "pods; start them so, or give --coordinator, --num-processes and --process-id")
    try:
        jax.distributed.initialize(
            config.coordinator, config.num_processes, config.process_id,
            initialization_timeout=config.peer_timeout,
            # JAX's own verdict on a silent process aborts the process with a long log; ours
            # (the watchdog) comes first and says which process was lost
            heartbeat_timeout_seconds=3 * config.peer_timeout,
            # a finished process waits at exit for the others (process 0 writes the outputs)
            shutdown_timeout_seconds=24 * 3600)
    except Exception as err:  # JAX raises several types for an unreachable coordinator
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DistributedError(f"cannot join the run at {where} within {config.peer_timeout} s "
                               f"({message[:200]})") from None
    from jax._src import distributed as jax_distributed

    if jax.process_index() != 0:  # process 0 reports; the others say nothing but errors,
        sys.stdout.flush()        # not even the collectives' own chatter on standard output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    _WATCH = _PeerWatch(jax_distributed.global_state.client, jax.process_index(),
                        jax.process_count(), config.peer_timeout)


def detected_cluster() -> str | None:
    """The kind of cluster JAX's auto-detection (``--distributed``) finds around this process,
    or None. JAX lists its detectors in a private registry; without this check, finding none
    surfaces as an unrelated message ("coordinator_address should be defined")."""
    from jax._src.clusters import ClusterEnv

    return next((env.name for env in ClusterEnv._cluster_types
                 if not env.opt_in_only_method and env.is_env_present()), None)


def _check_coordinator(config: DistributedConfig) -> None:
    """Fail with one line where JAX would abort the process: process 0 cannot serve the
    coordinator's port, or another process cannot reach it within ``peer_timeout``."""
    import socket

    host, _, port = config.coordinator.rpartition(":")
    address = (host.strip("[]"), int(port))
    if config.process_id == 0:
        with socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("", address[1]))
            except OSError as err:
                raise DistributedError(f"process 0 cannot serve the coordinator on port "
                                       f"{address[1]} ({err.strerror})") from None
        return
    deadline = time.monotonic() + config.peer_timeout
    while True:
        try:
            socket.create_connection(address, timeout=1).close()
            return
        except OSError as err:
            if time.monotonic() > deadline:
                raise DistributedError(f"cannot reach the coordinator at {config.coordinator} "
                                       f"within {config.peer_timeout} s ({err.strerror or err}); "
                                       "is process 0 running?") from None
            time.sleep(0.5)


def leave() -> None:
    """Tell the other processes that this one finished its work (it is no longer watched),
    wait until every other one finished or failed, then stop the watchdog.

    While waiting this process still watches the others: a process lost now ends it with the
    line that names the lost one, instead of a wait in JAX's shutdown barrier.
    """
    watch = _WATCH
    if watch is None:
        return
    watch.client.key_value_set(f"{KEY_PREFIX}/done/{watch.me}", "1", allow_overwrite=True)
    while not watch.all_finished():
        time.sleep(0.2)
    watch.stop()


def joined() -> bool:
    """True once this process has joined a run of several processes."""
    return _WATCH is not None


def fail(code: int, line: str) -> None:
    """End a multi-process run after an error on this process, with one line.

    If a peer was lost (the usual cause of a failed collective) the watchdog names it
    within ``peer_timeout``; if every process failed alike, all stop at once.
    """
    watch = _WATCH
    if watch is None:
        return
    watch.client.key_value_set(f"{KEY_PREFIX}/failed/{watch.me}", "1", allow_overwrite=True)
    deadline = time.monotonic() + watch.timeout + 2 * BEAT_SECONDS
    while time.monotonic() < deadline and not watch.all_finished():
        time.sleep(0.2)  # the watchdog may end the process here, naming a lost peer
    if watch.me == 0:
        # process 0 serves the coordinator: the others must be gone before it goes, or their
        # JAX client finds the service gone and aborts them (SIGABRT) instead of our exit
        others = watch.n - 1
        while time.monotonic() < deadline and len((watch.exiting | watch.done) - {0}) < others:
            time.sleep(0.2)
        time.sleep(2 * BEAT_SECONDS)
    else:
        watch.client.key_value_set(f"{KEY_PREFIX}/exiting/{watch.me}", "1", allow_overwrite=True)
    watch.stopped = True
    _exit_now(code, line)


def is_main() -> bool:
    """True on the process that writes logs, previews and reports (process 0)."""
    return jax.process_index() == 0


def multi_process() -> bool:
    return jax.process_count() > 1


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name``."""
    if multi_process():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (a collective: all must call it)."""
    if not multi_process():
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def main_value(value: int) -> int:
    """Process 0's ``value``, on every process (a collective: all must call it)."""
    if not multi_process():
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, np.int32)))
