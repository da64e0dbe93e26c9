"""One feasibility rule: dense, matrix-free or refuse, and how H_o's rank is taken.

Every caller — ``run``, the sweeps, grid workers — asks :func:`plan_method`. Memory is
what the OS can give now (``MemAvailable``), capped by an enclosing
:func:`memory_limit` (a Dask worker's limit). The thresholds:

* ``auto`` runs dense when its p×p matrices take at most :data:`AUTO_DENSE_SHARE` of
  the free memory, matrix-free otherwise — and matrix-free also when it fits and is
  expected to be faster (:func:`expected_seconds`): when the caller knows the largest
  basis the sketches will need (``basis``: the largest predicted rank, from a prediction
  of kind ``exact`` or ``bound``), the sketch costs about ``p·k²`` (its
  orthogonalisation) and the dense route about ``p³`` (its eigenvalues);
* ``dense`` is refused above :data:`DENSE_MAX_SHARE` (or, with ``fall_back``, run
  matrix-free instead, as a grid does for a point that does not fit a worker);
* matrix-free sketches get :data:`MATRIX_FREE_SHARE` of the free memory and are refused
  when their basis could not hold :data:`MIN_SKETCH_VECTORS` vectors (or p, if fewer).

``H_o`` is ranked by its nK×nK Gram matrix when nK ≤ p (``gram``), by the p×p
``AᵀA`` otherwise (``square``), or sketched when neither fits a matrix-free budget.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import resource
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..linalg.sketch import SKETCH_CHUNK, SKETCH_ROWS
from ..matrices import AUTO, DENSE, H_O_GRAM, H_O_SKETCH, H_O_SQUARE, MATRIX_FREE
from .network import network_num_params
from .report import about_text
from .threads import resolve_threads

#: p×p float64 matrices alive at the peak of a dense run: 3 accumulators, one
#: batch contribution, one LAPACK work copy
DENSE_MATRICES_HELD = 5
#: ``auto`` runs dense when its matrices take at most this share of the free memory
AUTO_DENSE_SHARE = 0.5
#: ``dense`` is refused when its matrices would take more than this share
DENSE_MAX_SHARE = 0.9
#: share of the free memory the matrix-free sketches may use (the basis is touched, and
#: costs memory, only as it grows: this caps it; p = 535,500 with rank 2862 needs 12.3 GB)
MATRIX_FREE_SHARE = 0.8
#: matrix-free refuses, before any work, a p whose basis could not hold this many vectors
MIN_SKETCH_VECTORS = 256
#: probes per growing round of the sketch (its working arrays scale with it)
SKETCH_BLOCK = 128
#: the working arrays of one round (:data:`_WORK_ROWS` blocks of p) may take this share of the
#: budget; above it the block is halved (down to a quarter of SKETCH_BLOCK) to leave the room to the basis
SKETCH_WORK_SHARE = 0.1
#: arrays of ``block`` rows of length p alive in one round: probes, products, residuals,
#: their temporaries and the product operator's own buffers
_WORK_ROWS = 8
#: auto's time model (seconds on the 2-core machine of ``benchmarks/bench_auto.py``; only the
#: ratios matter): dense ≈ AUTO_DENSE_SECONDS_PER_P3·p³ (eigenvalues of two p×p matrices, and
#: their p products each), matrix-free ≈ AUTO_SKETCH_SECONDS_PER_PK2·p·k² (block Gram–Schmidt of a
#: basis of k vectors, twice, and k products) + AUTO_SKETCH_OVERHEAD_SECONDS (compiling two
#: product operators, probe rounds). Measured at p = 8040, k = 2840: dense 48.6 s, matrix-free 8.8 s.
AUTO_DENSE_SECONDS_PER_P3 = 8e-11
AUTO_SKETCH_SECONDS_PER_PK2 = 9e-11
AUTO_SKETCH_OVERHEAD_SECONDS = 1.0
#: p×p float64 arrays held by the "square" H_o path (H_o and LAPACK's copy)
_SQUARE_HELD = 2
#: the fixed arrays of the Gram or square H_o path may take this share of a matrix-free budget
_H_O_SHARE = 0.25


@dataclass(frozen=True)
class MemoryPlan:
    """How ``H_o`` is ranked (``gram``, ``square`` or ``sketch``), how many basis vectors
    of length p the sketches may hold within the budget, and the sketch's ``block``."""

    h_o: str
    capacity: int
    fixed_bytes: int
    block: int = SKETCH_BLOCK

    def describe(self, p: int, nK: int) -> str:
        """One line for the output: how H_o is ranked and the sketch capacity."""
        how = {H_O_GRAM: f"H_o from the {nK}×{nK} Gram matrix", H_O_SQUARE: f"H_o as {p}×{p} AᵀA",
               H_O_SKETCH: "H_o sketched"}[self.h_o]
        blk = "" if self.block == SKETCH_BLOCK else f", blocks of {self.block}"
        return f"{how}; sketches of up to {self.capacity} vectors{blk}"


@dataclass(frozen=True)
class MethodPlan:
    """The outcome of :func:`plan_method`: ``method`` (dense or matrix-free), ``reason``
    (one line for the output), ``h_o`` (gram or square when dense; the matrix-free
    plan's path otherwise), when matrix-free the ``memory`` plan and ``budget``, and the
    BLAS ``threads`` the run uses (:func:`~hessrank.measure.threads.resolve_threads`)."""

    method: str
    reason: str
    h_o: str
    memory: MemoryPlan | None = None
    budget: float | None = None
    threads: int | None = None
    #: the devices matrix-free bases are sharded over (0: host memory)
    devices: int = 0


_MEMORY_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("hessrank_memory_limit", default=None)


@contextmanager
def memory_limit(nbytes: int | None):
    """Within this block (this thread), plan memory as if at most ``nbytes`` were free
    (``None``: no cap) — e.g. a Dask worker's memory limit."""
    token = _MEMORY_LIMIT.set(int(nbytes) if nbytes else None)
    try:
        yield
    finally:
        _MEMORY_LIMIT.reset(token)


def available_memory_bytes() -> int:
    """Memory the OS can give us now (``MemAvailable``, else total physical memory),
    capped by an enclosing :func:`memory_limit`."""
    have = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if have is None:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    own = _process_room_bytes()
    if own is not None:
        have = min(have, own)
    cap = _MEMORY_LIMIT.get()
    return have if cap is None else min(have, cap)


def _process_room_bytes() -> int | None:
    """What this process's own limits still allow (``None``: no limit): ``RLIMIT_AS``
    (``ulimit -v``) less the address space in use, and the cgroup's ``memory.max`` less its
    ``memory.current`` (a container, a batch job's allocation)."""
    room = []
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            room.append(max(0, soft - _status_kib("VmSize") * 1024))
    except (OSError, ValueError):
        pass
    for folder, limit_file, used_file in _cgroup_memory_files():
        limit, used = _read_int(folder / limit_file), _read_int(folder / used_file)
        if limit is not None:
            room.append(max(0, limit - (used or 0)))
            break
    return min(room) if room else None


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cgroup_memory_files():
    """``(folder, limit file, usage file)`` of this process's memory cgroup, v2 then v1."""
    root = Path("/sys/fs/cgroup")
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers:   # cgroup v2
            out.append((root / path.lstrip("/"), "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):  # cgroup v1; inside a container the own folder is the root
            for folder in (root / "memory" / path.lstrip("/"), root / "memory"):
                out.append((folder, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    return out


def _read_int(path: Path) -> int | None:
    """An integer file of the cgroup (``None``: missing, or ``max``)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def dense_memory_bytes(p: int) -> int:
    """Peak bytes of a dense run with ``p`` parameters."""
    return DENSE_MATRICES_HELD * p * p * 8


def dense_h_o_path(p: int, n: int, K: int) -> str:
    """``gram`` when the nK×nK Gram matrix is no larger than p×p, else ``square``."""
    return H_O_GRAM if n * K <= p else H_O_SQUARE


def plan_memory(p: int, n: int, K: int, budget_bytes: float | None, *, block: int | None = None) -> MemoryPlan:
    """The matrix-free ``H_o`` path, basis capacity and sketch block within ``budget_bytes``
    (None: unlimited). ``block`` None: :data:`SKETCH_BLOCK`, halved while one round's
    working arrays would take more than :data:`SKETCH_WORK_SHARE` of the budget."""
    nK = n * K
    if budget_bytes is None:
        return MemoryPlan(dense_h_o_path(p, n, K), p, 0, block or SKETCH_BLOCK)
    if block is None:
        block = SKETCH_BLOCK
        while block > SKETCH_BLOCK // 4 and 8 * _WORK_ROWS * block * p > SKETCH_WORK_SHARE * budget_bytes:
            block //= 2
    gram_bytes = 8 * (nK * p + 3 * nK * nK)             # A, A Aᵀ, eigenvectors, LAPACK work
    square_bytes = 8 * _SQUARE_HELD * p * p
    if nK <= p and gram_bytes <= _H_O_SHARE * budget_bytes:
        h_o, fixed = H_O_GRAM, gram_bytes
    elif nK > p and square_bytes <= _H_O_SHARE * budget_bytes:
        h_o, fixed = H_O_SQUARE, square_bytes
    else:
        h_o, fixed = H_O_SKETCH, 0
    work = 8 * _WORK_ROWS * block * p                    # probes, products, residuals of one round
    fixed += 8 * n * K * K                               # the K×K output Hessians Λ_i of the samples
    room = max(0.0, budget_bytes - fixed - work)
    row = p * (1 + SKETCH_ROWS / SKETCH_CHUNK)           # a basis row and its share of the chunk summaries
    cap = int(room // (8 * row))
    cap = int(room // (8 * (row + min(cap, p))))        # the basis (k×p, summaries) and T (k×k)
    return MemoryPlan(h_o, max(0, min(cap, p)), int(fixed + work), block)


def plan_mesh_memory(p: int, n: int, K: int, budget_bytes: float | None, *, devices: int,
                     device_bytes: float | None = None, block: int | None = None) -> MemoryPlan:
    """:func:`plan_memory` for bases sharded over ``devices`` devices (``device_bytes`` each; None:
    unlimited) with ``budget_bytes`` of host memory per process; :class:`ConfigError` naming ``devices``,
    with the estimate, when a device cannot hold its share of :data:`MIN_SKETCH_VECTORS` basis rows.

    Per device: its ``⌈p/N⌉`` columns of each basis row and of the round's :data:`_WORK_ROWS` blocks of
    rows, and the replicated ``block × k`` coefficients (two); per process: ``T`` (k×k), ``H_o``'s
    fixed arrays (:func:`plan_memory`) and the rows gathered for the products (four blocks of p)."""
    host = plan_memory(p, n, K, budget_bytes, block=block)
    block = host.block
    width = -(-p // devices)
    cap = p
    if device_bytes is not None:
        room = device_bytes - 8 * _WORK_ROWS * block * width
        cap = min(cap, int(max(0.0, room) // (8 * (width + 2 * block))))
    if budget_bytes is not None:
        room = budget_bytes - host.fixed_bytes + 8 * _WORK_ROWS * block * p - 8 * 4 * block * p
        cap = min(cap, int(max(0.0, room) ** 0.5 // 8 ** 0.5))
    if cap < min(p, MIN_SKETCH_VECTORS):
        need = 8 * (min(p, MIN_SKETCH_VECTORS) * (width + 2 * block) + _WORK_ROWS * block * width)
        have = "unlimited" if device_bytes is None else _gib(device_bytes)
        raise ConfigError.invalid(
            "devices", devices,
            f"p = {p} parameters: each device needs about {_gib(need)} for its share of "
            f"{min(p, MIN_SKETCH_VECTORS)} basis vectors and one round's work arrays, {have} is free per "
            "device; use more devices, or fewer parameters", quoted=False)
    return MemoryPlan(host.h_o, cap, host.fixed_bytes - 8 * _WORK_ROWS * block * p + 8 * 4 * block * p, block)


def expected_seconds(p: int, basis: int) -> tuple[float, float]:
    """``(dense, matrix-free)`` expected seconds for ``p`` parameters whose largest
    sketch needs ``basis`` vectors, by the time model of :data:`AUTO_DENSE_SECONDS_PER_P3`."""
    k = min(int(basis), int(p))
    dense = AUTO_DENSE_SECONDS_PER_P3 * float(p) ** 3
    sketch = AUTO_SKETCH_SECONDS_PER_PK2 * float(p) * k * k + AUTO_SKETCH_OVERHEAD_SECONDS
    return dense, sketch


def expected_basis(prediction) -> int | None:
    """The largest basis the sketches of H_L, H_o, H_F will need: the largest predicted
    rank when every matrix has a prediction of kind ``exact`` or ``bound`` (a bound caps
    the basis too), else ``None`` (nothing is known: ``auto`` chooses by memory alone)."""
    if prediction is None:
        return None
    values = [getattr(prediction, m, None) for m in ("H_L", "H_o", "H_F")]
    kinds = [prediction.kinds.get(m) for m in ("H_L", "H_o", "H_F")]
    if any(v is None for v in values) or any(k not in ("exact", "bound") for k in kinds):
        return None
    return int(max(values))


def plan_method(method: str, p: int, n: int, K: int, *, fall_back: bool = False,
                basis: int | None = None, threads: int | None = None, devices=None,
                jax_devices: bool = True) -> MethodPlan:
    """How a run of ``p`` parameters on ``n`` samples with ``K`` outputs is computed under
    ``method`` (``auto``, ``dense`` or ``matrix-free``); raise :class:`ConfigError` when it
    cannot fit. ``fall_back``: a ``dense`` request that does not fit runs matrix-free.
    ``basis``: the largest basis the sketches are expected to need (:func:`expected_basis`);
    with it ``auto`` runs matrix-free where that is expected to be faster than dense
    (:func:`expected_seconds`) and the basis fits, without it dense whenever dense fits.
    ``threads``: BLAS threads (None: the cores this process may use), recorded in the plan.
    ``devices`` (None or ``auto``, a number, a mesh; :func:`~hessrank.linalg._mesh.choose_devices`): a
    matrix-free plan on several devices plans each device's share (:func:`plan_mesh_memory`); a dense
    plan runs on the host. ``jax_devices``: whether ``devices`` None may choose JAX's devices; False
    for a front end that computes without JAX (a PyTorch module), whose bases then stay in host
    memory unless ``devices`` is given (and JAX is not imported)."""
    plan = dataclasses.replace(_plan_method(method, p, n, K, fall_back=fall_back, basis=basis),
                               threads=resolve_threads(threads))
    if devices is None and not jax_devices:
        return plan
    from ..linalg._mesh import choose_devices, device_mesh, per_device_bytes  # JAX: only once a plan is made

    if plan.method != MATRIX_FREE:
        if devices not in (None, "auto"):
            device_mesh(devices)   # refuse a bad number even when it is not used
        return plan
    mesh = choose_devices(devices)
    if mesh is None:
        return plan
    count = int(mesh.devices.size)
    memory = plan_mesh_memory(p, n, K, plan.budget, devices=count, device_bytes=per_device_bytes(mesh, plan.budget))
    return dataclasses.replace(plan, memory=memory, devices=count,
                               reason=f"{plan.reason}; bases sharded over {count} device{'s' * (count != 1)}, "
                                      f"up to {memory.capacity} vectors")


def _plan_method(method: str, p: int, n: int, K: int, *, fall_back: bool, basis: int | None) -> MethodPlan:
    have = available_memory_bytes()
    need = dense_memory_bytes(p)
    h_o = dense_h_o_path(p, n, K)
    what = "p×p matrices" if h_o == H_O_SQUARE else f"p×p H_L, H_F and the {n * K}×{n * K} Gram matrix of H_o"
    fits = f"{what} fit in memory ({_gib(need)} of {_gib(have)} free)"
    if method == DENSE and need <= DENSE_MAX_SHARE * have:
        return MethodPlan(DENSE, f"as asked: {fits}", h_o)
    if method == AUTO and need <= AUTO_DENSE_SHARE * have:
        if basis is None:
            return MethodPlan(DENSE, f"auto: {fits}; no exact or bounded prediction of the ranks to compare the "
                                     "expected times by", h_o)
        t_dense, t_sketch = expected_seconds(p, basis)
        budget = MATRIX_FREE_SHARE * have
        plan = plan_memory(p, n, K, budget)
        sketches = f"sketches of up to {min(basis, p)} of p = {p} vectors"
        if t_sketch < t_dense and plan.capacity >= min(p, basis):
            return MethodPlan(MATRIX_FREE, f"auto: expected to be faster, {about_text(t_sketch)} matrix-free "
                                           f"against {about_text(t_dense)} dense ({sketches}); "
                                           f"{plan.describe(p, n * K)}", plan.h_o, plan, budget)
        return MethodPlan(DENSE, f"auto: {fits} and are expected to be faster, {about_text(t_dense)} dense "
                                 f"against {about_text(t_sketch)} matrix-free ({sketches})", h_o)
    if method == DENSE and not fall_back:
        raise ConfigError.invalid(
            "method", DENSE,
            f"p = {p} parameters needs about {_gib(need)} for dense Hessians ({DENSE_MATRICES_HELD} p×p "
            f"float64 matrices) but {_gib(have)} is available; use method matrix-free, or fewer "
            "parameters (units, dim)", quoted=False)
    budget = MATRIX_FREE_SHARE * have
    plan = plan_memory(p, n, K, budget)
    if plan.capacity < min(p, MIN_SKETCH_VECTORS):
        raise ConfigError.invalid(
            "method", method,
            f"p = {p} parameters leaves room for only {plan.capacity} sketch vectors in {_gib(budget)} "
            f"(dense would need {_gib(need)}); use fewer parameters (units, dim)", quoted=False)
    why = {AUTO: "auto: dense would need", MATRIX_FREE: "--method matrix-free; dense would need",
           DENSE: "dense does not fit; dense would need"}[method]
    return MethodPlan(MATRIX_FREE, f"{why} {_gib(need)} of {_gib(have)} free; {plan.describe(p, n * K)}",
                      plan.h_o, plan, budget)


#: float64 copies of the data alive while it is made, selected, resized and encoded
DATA_COPIES = 4
#: the data may take at most this share of the free memory (the Hessians need the rest)
DATA_MAX_SHARE = 0.25


def check_data_size(n: int, d: int, K: int) -> None:
    """Refuse (:class:`ConfigError`, naming the largest of n, dim, K) data of ``n``
    samples, ``d`` inputs and ``K`` outputs whose float64 arrays would not fit in
    :data:`DATA_MAX_SHARE` of the free memory — before anything is allocated."""
    need = DATA_COPIES * 8 * int(n) * (int(d) + int(K))
    have = available_memory_bytes()
    if need <= DATA_MAX_SHARE * have:
        return
    param, value = max((("n", int(n)), ("dim", int(d)), ("K", int(K))), key=lambda kv: kv[1])
    raise ConfigError.invalid(
        param, value, f"n = {n} samples of d = {d} inputs and K = {K} outputs need about {_gib(need)} while "
                      f"they are loaded, but {_gib(have)} is free; use a smaller {param}", quoted=False)


def plan_before_loading(config, *, n: int | None, d: int | None) -> None:
    """Check ``config`` (data of ``n`` samples of dimension ``d``, either ``None`` when
    only the data file knows it) against the memory before data or parameters exist:
    the data's size, then :func:`plan_method` for the network's p (from its widths:
    nothing is allocated). Raises :class:`ConfigError`."""
    if n is not None and d is not None:
        check_data_size(n, d, config.K)
    if d is not None:
        p = network_num_params(config, int(d), int(config.K))
        if p is not None:  # a user's model: only its build knows p
            plan_method(config.method, p, n or 1, config.K)


def _gib(nbytes: float) -> str:
    gib = nbytes / 2**30
    if nbytes < 0.1 * 2**20:
        return f"{nbytes / 2**10:.0f} KiB"
    if gib < 0.1:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{gib:.2f} GiB" if gib < 10 else f"{gib:.0f} GiB"
