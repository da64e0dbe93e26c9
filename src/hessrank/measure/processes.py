"""One measurement as several processes, on one host or many: ``jax.distributed``.

Every process runs the same command on the same data; :func:`start_processes` joins them
(before JAX starts its devices), after which ``jax.devices()`` lists every process's devices
and a matrix-free run shards its bases over all of them
(:func:`~hessrank.linalg._mesh.choose_devices`): each process holds its share of the p
columns of every basis row, and takes the Hessian-vector products over its own share of the
samples (the shares are added across the processes). The small matrices — ``T = Q H Qᵀ`` and the coefficients of
each projection — are replicated, so every process computes the same Ritz values and checks
the same certificate; :func:`check_same` verifies that at the end. Only process 0 prints and
writes (:func:`is_main_process`).
"""

from __future__ import annotations

from ..errors import ConfigError


def start_processes(*, coordinator: str | None = None, num_processes: int | None = None,
                    process_id: int | None = None, detect: bool = False) -> int:
    """Join ``num_processes`` processes through the ``coordinator`` (``HOST:PORT``, served by
    process 0) as process ``process_id``; ``detect``: let JAX find all three itself (Slurm,
    Open MPI, TPU pods, …). Must run before JAX uses any device. Returns this process's index.

    Raises:
        ConfigError: naming ``coordinator``, ``num_processes`` or ``process_id`` when one is
            missing or out of range, or when the processes cannot be joined."""
    import jax

    if detect:
        if coordinator is not None or num_processes is not None or process_id is not None:
            raise ConfigError.invalid("distributed", True, "detects the coordinator, the number of processes and "
                                                           "this process's index; give either it or those three",
                                      quoted=False)
        kwargs = {}
    else:
        _check(coordinator, num_processes, process_id)
        kwargs = {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        param = "distributed" if detect else "coordinator"
        raise ConfigError.about(param, f"cannot join the processes: {first[:300]}") from None
    return jax.process_index()


def is_main_process() -> bool:
    """Whether this is process 0 (the one that prints and writes), or the only process."""
    import jax

    return jax.process_index() == 0


def check_same(values, what: str) -> None:
    """Refuse (:class:`~hessrank.HessrankError`) when the processes hold different ``values`` (a
    sequence of numbers): every process must have computed the same ranks and certificates."""
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    with jax.enable_x64(True):  # float64 values compared as float64
        every = np.asarray(multihost_utils.process_allgather(np.asarray(values, dtype=np.float64)))
    if not (every == every[:1]).all():
        from ..errors import HessrankError
        raise HessrankError(f"the {jax.process_count()} processes computed different {what}: "
                            f"{every.tolist()}")


def check_same_ranks(ranks: dict, details: dict | None = None) -> None:
    """:func:`check_same` of each matrix's rank, cut and certificate: ``ranks`` maps a name to an object
    with ``rank`` and ``tol`` (and ``certified``, or ``details[name]["certified"]``; exact: certified)."""
    def certified(name):
        own = getattr(ranks[name], "certified", None)
        return bool((details or {}).get(name, {}).get("certified", True) if own is None else own)

    check_same([v for m in sorted(ranks) for v in (ranks[m].rank, ranks[m].tol, certified(m))],
               "ranks, tolerances and certificates")


def share_points(points) -> list[int]:
    """Process 0's ``points`` (whole numbers) on every process (the others pass anything, e.g. None):
    which points of a sweep are measured is decided by process 0's result store."""
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return list(points)
    from jax.experimental import multihost_utils

    main = is_main_process()
    with jax.enable_x64(True):
        count = int(multihost_utils.broadcast_one_to_all(np.int64(len(points) if main else 0)))
        if count == 0:
            return []
        mine = np.asarray(points if main else np.zeros(count), dtype=np.int64)
        return [int(v) for v in np.asarray(multihost_utils.broadcast_one_to_all(mine))]


def _check(coordinator, num_processes, process_id) -> None:
    """Each value given is checked first, then that none is missing."""
    if coordinator is not None:
        host, sep, port = str(coordinator).rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError.invalid("coordinator", coordinator, "must be HOST:PORT, a port from 1 to 65535 on "
                                                                  "the host of process 0")
    if num_processes is not None and (isinstance(num_processes, bool) or not isinstance(num_processes, int)
                                      or num_processes < 1):
        raise ConfigError.invalid("num_processes", num_processes, "must be a whole number, 1 or more")
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError.about(missing[0], "missing: several processes need the coordinator (HOST:PORT), the "
                                            "number of processes and this process's index, all three")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ConfigError.invalid("process_id", process_id, f"must be a whole number from 0 to {num_processes - 1}")
