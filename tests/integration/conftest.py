from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tansu import Broker, running_broker


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Broker]:
    """A fresh tansu broker for one test."""
    with running_broker(tmp_path) as broker:
        yield broker
