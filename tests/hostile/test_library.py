"""The library refuses nonsense: non-finite matrices, non-symmetric operators, hostile grid files."""

import numpy as np
import pytest

from hessrank.errors import ConfigError, DataError
from hessrank.grid import load_grid
from hessrank.linalg import numerical_rank, rank_from_eigenvalues, sketch_rank


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_numerical_rank_of_a_non_finite_matrix_raises(bad):
    H = np.eye(4)
    H[1, 2] = H[2, 1] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        numerical_rank(H)
    with pytest.raises(DataError):
        rank_from_eigenvalues([1.0, bad])


class _Matrix:
    def __init__(self, M):
        self.M, self.p = M, M.shape[0]

    def __call__(self, V):
        return V @ self.M.T


@pytest.mark.parametrize("seed", range(3))
def test_sketch_rank_refuses_a_non_symmetric_operator(seed):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 40))
    with pytest.raises(ConfigError, match="not symmetric"):
        sketch_rank(_Matrix(B))
    with pytest.raises(ConfigError, match="not symmetric"):
        sketch_rank(_Matrix(np.triu(B + B.T)))
    sym = sketch_rank(_Matrix(B + B.T))   # the same numbers, symmetric: a certified, right rank
    assert sym.certificate.certified and sym.info.rank == np.linalg.matrix_rank(B + B.T)


def test_sketch_rank_refuses_nan_products():
    M = np.eye(10)
    M[0, 0] = np.nan
    with pytest.raises(DataError):
        sketch_rank(_Matrix(M))


@pytest.mark.parametrize("name,content,match", [
    ("...toml", b"[grid]\nseed = [1, 2]\n", "name"),
    ("bad.toml", b"[grid]\nseed = [1, 2]\xff\n", "UTF-8"),
    ("huge.toml", ("[grid]\n" + "".join(f"k{i} = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for i in range(6))).replace(
        "k0", "seed").replace("k1", "n").replace("k2", "dim").replace("k3", "K").replace("k4", "batch_size")
     .replace("k5", "label_noise").encode(), "points"),
])
def test_hostile_grid_files_are_one_line(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as info:
        load_grid(path)
    assert "\n" not in str(info.value)
