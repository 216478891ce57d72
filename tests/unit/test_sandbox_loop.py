"""The standalone sandbox's event loop choice (``$KINETIC_SANDBOX_LOOP``)."""

from __future__ import annotations

import sys

import pytest

from kinetic_empire.sandbox.cli import LOOP_ENV, event_loop_factory


def test_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert event_loop_factory() is None


def test_uvloop_is_the_default_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert event_loop_factory() is uvloop.new_event_loop


def test_asyncio_is_the_default_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOP_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop_factory() is None
    monkeypatch.setenv(LOOP_ENV, "uvloop")
    with pytest.raises(ValueError, match=r"^\$KINETIC_SANDBOX_LOOP=uvloop: uvloop is not installed$"):
        event_loop_factory()


def test_uvloop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.setenv(LOOP_ENV, "uvloop")
    assert event_loop_factory() is uvloop.new_event_loop


def test_an_unknown_loop_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "tokio")
    with pytest.raises(ValueError, match=r"^\$KINETIC_SANDBOX_LOOP='tokio': must be 'asyncio' or 'uvloop'$"):
        event_loop_factory()
