"""The migration tests start their own servers (see migrate_harness); each test gets a work dir."""

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="migrate-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
