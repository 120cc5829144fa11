import itertools

import pytest

from meridian_testlib import BIN, Region

_names = itertools.count()


def pytest_sessionstart(session):
    if not BIN.exists():
        raise pytest.UsageError(f"{BIN} not found: build it first (cargo build -p meridian)")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """One region server shared by a test module."""
    r = Region(tmp_path_factory.mktemp("region") / "data").start()
    yield r
    r.terminate()


@pytest.fixture
def ddb(region):
    return region.client()


@pytest.fixture
def table_name():
    return f"tbl_{next(_names)}"
