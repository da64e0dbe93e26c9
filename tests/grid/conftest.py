"""Shared by the grid tests: a real Dask ``LocalCluster`` of two worker processes."""

import pytest


@pytest.fixture(scope="module")
def cluster():
    """A client of a LocalCluster of 2 worker processes (one thread, 2 GB each), one per test module."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="2GB") as cl, Client(cl) as client:
        yield client
