"""The sketch's basis on a mesh of JAX devices: the same ranks, tolerances and certificates as the
host's NumPy path, each device holding only its columns of the basis and its share of the samples
for the products, per-device memory plans; every command with ``--devices 2`` as without.

Several CPU devices exist only when ``XLA_FLAGS=--xla_force_host_platform_device_count`` is set
before JAX starts: those checks run the battery in a child process (``tests/mesh_battery.py``)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from hessrank import ConfigError, RunConfig, hessian_ranks, run
from hessrank.curvature import CurvatureOperator
from hessrank.linalg import sketch_rank
from hessrank.linalg._mesh import MeshSubspace, choose_devices, device_mesh
from hessrank.measure import matrix_free_ranks
from hessrank.measure.plan import MIN_SKETCH_VECTORS, plan_mesh_memory

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def battery():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(TESTS / "mesh_battery.py")], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_ranks_tolerances_and_certificates_on_1_2_4_devices_equal_the_host(battery):
    assert battery["devices"] == 4
    for name, case in battery["cases"].items():
        host = case["host"]
        assert host["devices"] == 0
        for n in ("1", "2", "4"):
            dev = case[n]
            assert dev["devices"] == int(n), name
            assert dev["product_devices"] == (int(n) if n != "1" else 0), name   # the samples split too
            assert dev["ranks"] == host["ranks"], (name, n)
            assert dev["status"] == host["status"], (name, n)
            for m, tol in host["tol"].items():        # max|λ|·p·eps from Ritz values rounded differently
                assert dev["tol"][m] == pytest.approx(tol, rel=1e-10), (name, n, m)
            assert dev["blocks"] == host["blocks"], (name, n)
            assert dev["block_status"] == host["block_status"], (name, n)
    assert battery["cases"]["cnn"]["host"]["blocks"]            # the CNN's per-layer blocks were ranked


def test_products_split_over_1_2_4_devices_equal_the_host_operators(battery):
    for name, counts in (("tanh-cross-bias", (1, 4)), ("cnn", (1, 2, 4))):
        case = battery["cases"][name]
        assert set(case["products"]) == {f"{m}/{n}" for m in ("H_L", "H_F", "H_o") for n in counts}
        for key, got in case["products"].items():
            devices = int(key.split("/")[1])
            assert got["error"] < 1e-12, (name, key)
            assert sum(got["samples"]) == 10, (name, key)               # weight 1: each sample once
            if devices == 1:
                continue
            # each device holds one share of the samples (a leading axis of one), no two on one device
            assert got["full"][0] == devices, (name, key)
            for shapes, where in zip(got["shapes"], got["devices"]):
                assert len(shapes) == devices and len(set(where)) == devices, (name, key)
                assert all(s[0] == 1 for s in shapes), (name, key)
            assert max(got["samples"]) - min(got["samples"]) <= 1, (name, key)   # contiguous, near-equal shares


def test_every_command_on_2_devices_gives_the_numbers_of_the_host(battery):
    found = battery["commands"]
    host = found["host"]
    assert host["devices"] == 0 and found["run"]["devices"] == 2 and host["split"] == []
    assert host["ranks"] == {"H_L": 40, "H_o": 16, "H_F": 40}
    for name in ("run", "spectrum", "sweep", "train", "grid"):     # all at run's configuration
        got = found[name]
        assert got["code"] == 0 and got.get("status") in (None, "done"), name
        assert got["split"] == [2], name                               # the products split over 2 devices
        assert got["ranks"] == host["ranks"], name
        for m, tol in host["tol"].items():
            assert got["tol"][m] == pytest.approx(tol, rel=1e-10), (name, m)


def test_each_device_holds_only_its_columns_of_the_basis(battery):
    assert battery["rank"] == 30
    width = math.ceil(203 / 4)
    for shapes, devices, spec in zip(battery["shards"], battery["shard_devices"], battery["sharding"]):
        assert len(shapes) == 4 and len(set(devices)) == 4
        assert all(s[1] == width for s in shapes) and len({s[0] for s in shapes}) == 1
        assert spec == "PartitionSpec(None, 'p')" or spec == "P(None, 'p')"


def test_one_device_sketch_against_numpy_matrix_rank():
    rng = np.random.default_rng(4)
    B = rng.standard_normal((37, 150))
    H = B.T @ (B * rng.standard_normal(37)[:, None])
    op = CurvatureOperator("H", 150, lambda V: np.asarray(V) @ H)
    res = sketch_rank(op, devices=1, block=16, probes=16)
    assert isinstance(res.subspace, MeshSubspace)
    assert res.certificate.certified and res.info.rank == np.linalg.matrix_rank(H) == 37
    Q = np.vstack([res.subspace.to_host(b) for b in res.subspace.blocks])
    np.testing.assert_allclose(Q @ Q.T, np.eye(Q.shape[0]), atol=1e-13)            # orthonormal rows
    np.testing.assert_allclose(res.subspace.T, Q @ H @ Q.T, atol=1e-11 * np.abs(H).max())


def test_auto_keeps_one_cpu_on_the_host_and_bad_devices_are_refused(problem):
    assert choose_devices(None) is None and choose_devices("auto") is None     # one process of CPUs
    assert device_mesh(1).devices.size == 1
    for bad in (0, len(jax.devices()) + 1, 1.5, "two"):
        with pytest.raises(ConfigError, match="devices"):
            device_mesh(bad)
    model, lossf, theta, X, Y = problem("tanh", "mse", False)
    seen = []
    res = matrix_free_ranks(model, lossf, theta, X, Y, devices=1, observe=lambda name, *a: seen.append(name))
    assert res.devices == 0 and res.product_devices == 0      # spectra read the basis on the host
    assert sorted(seen) == ["H_F", "H_L", "H_o"]


def test_memory_is_planned_per_device():
    p, n, K = 200_000, 50, 10
    one = plan_mesh_memory(p, n, K, 64e9, devices=1, device_bytes=4e9)
    four = plan_mesh_memory(p, n, K, 64e9, devices=4, device_bytes=4e9)
    # a device holds ⌈p/N⌉ columns of each row (and of the round's work arrays): four devices of the
    # same size hold more than four times the rows, and each device's shard fits it
    assert four.capacity > 4 * one.capacity > 0
    assert one.capacity * 8 * p < 4e9 and four.capacity * 8 * math.ceil(p / 4) < 4e9
    assert plan_mesh_memory(p, n, K, None, devices=2).capacity == p      # nothing limits: the whole basis
    with pytest.raises(ConfigError, match=r"devices=2: p = 200000 parameters: each device needs about .* for its "
                                          rf"share of {MIN_SKETCH_VECTORS} basis vectors"):
        plan_mesh_memory(p, n, K, 64e9, devices=2, device_bytes=0.1e9)


def test_run_and_hessian_ranks_on_one_device_equal_the_host():
    cfg = RunConfig(dataset="gaussian", n=10, dim=4, units=(5,), K=2, method="matrix-free", activation="tanh")
    host, dev = run(cfg), run(cfg, devices=1)
    assert host.devices == 0 and dev.devices == 1 and dev.to_dict()["devices"] == 1
    assert "sharded over 1 device," in dev.method_reason
    assert {m: r.rank for m, r in dev.ranks.items()} == {m: r.rank for m, r in host.ranks.items()}
    with pytest.raises(ConfigError, match="devices"):
        run(cfg, devices=len(jax.devices()) + 1)

    def f(params, X):
        return jax.numpy.tanh(X @ params["w"]) @ params["v"]

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((4, 6)), "v": rng.standard_normal((6, 2))}
    X, Y = rng.standard_normal((9, 4)), rng.standard_normal((9, 2))
    a = hessian_ranks(f, params, X, Y, method="matrix-free")
    b = hessian_ranks(f, params, X, Y, method="matrix-free", devices=1)
    assert b.devices == 1 and {m: r.rank for m, r in a.ranks.items()} == {m: r.rank for m, r in b.ranks.items()}


@pytest.mark.parametrize("h_o", ["square", "sketch"])
def test_h_l_from_h_f_basis_on_every_outer_product_path(h_o, problem):
    # H_L starts from H_F's basis with Q H_o Qᵀ added: from the dense AᵀA, or from H_o's products
    model, lossf, theta, X, Y = problem("tanh", "cross", False, n=12)
    host = matrix_free_ranks(model, lossf, theta, X, Y, h_o_path=h_o, block=16, probes=16)
    dev = matrix_free_ranks(model, lossf, theta, X, Y, h_o_path=h_o, block=16, probes=16, devices=1)
    assert {m: r.rank for m, r in dev.ranks.items()} == {m: r.rank for m, r in host.ranks.items()}
    assert [dev.details[m]["status"] for m in dev.ranks] == [host.details[m]["status"] for m in host.ranks]
