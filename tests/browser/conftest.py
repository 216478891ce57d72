"""Fixtures of the browser tests: a live run and a fresh browser, each stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import harness


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[harness.LiveRun]:
    with harness.live_run(tmp_path) as run:
        yield run


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[harness.Browser]:
    with harness.browser(tmp_path) as b:
        yield b
