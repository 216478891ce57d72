"""One registry of strategy plugins, fed by three sources.

1. Python files in ``strategies/`` (the project's folder) and any ``--strategy-path`` folder;
2. installed packages exposing entry points in the group ``kinetic_empire.strategies``;
3. explicit ``package.module:Class`` references.

A name declared twice is an error naming both sources; a plugin written for another API version is
refused with the version it needs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from ..core.errors import PluginError
from ..core.names import RULE as NAME_RULE
from ..core.names import is_safe_name
from .base import API_VERSION, Strategy

ENTRY_POINT_GROUP = "kinetic_empire.strategies"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    cls: type[Strategy]
    source: str  # file path, "entry point <name> (<dist>)" or "module:Class"


def default_strategy_dirs() -> list[Path]:
    """The project's ``strategies/`` folder (next to the package) and one in the working directory."""
    dirs = [Path(__file__).resolve().parents[2] / "strategies", Path.cwd() / "strategies"]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


class StrategyRegistry:
    def __init__(self) -> None:
        self._plugins: dict[str, PluginInfo] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._plugins

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def plugins(self) -> list[PluginInfo]:
        return [self._plugins[n] for n in self.names()]

    def add(self, cls: type[Strategy], source: str) -> None:
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)) or cls is Strategy:
            raise PluginError(f"{source}: {cls!r} is not a Strategy subclass")
        version = getattr(cls, "api_version", None)
        if version != API_VERSION:
            raise PluginError(
                f"{source}: strategy {cls.__name__} targets plugin API version {version}, "
                f"this engine implements version {API_VERSION}"
            )
        name = cls.strategy_name()
        if not is_safe_name(name):  # names become parts of run and results folder names
            raise PluginError(f"{source}: strategy name {name!r} cannot be used in a folder name: {NAME_RULE}")
        existing = self._plugins.get(name)
        if existing is not None:
            if existing.cls is cls:
                return
            raise PluginError(f"strategy name {name!r} is declared twice: in {existing.source} and in {source}")
        self._plugins[name] = PluginInfo(name, cls, source)

    def get(self, name: str) -> type[Strategy]:
        if ":" in name:
            cls = load_reference(name)
            self.add(cls, name)
            return cls
        info = self._plugins.get(name)
        if info is None:
            known = ", ".join(self.names()) or "none"
            raise PluginError(f"unknown strategy {name!r}; known strategies: {known}")
        return info.cls

    # ----------------------------------------------------------------------------- sources
    def load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise PluginError(f"strategy path {folder} is not a folder")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            for cls in _strategies_in_file(path):
                self.add(cls, str(path))

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginError(f"entry point {ep.name} ({ep.value}) failed to load: {exc}") from exc
            dist = getattr(ep, "dist", None)
            source = f"entry point {ep.name} = {ep.value}" + (f" ({dist.name})" if dist else "")
            self.add(obj, source)


def load_reference(reference: str) -> type[Strategy]:
    """Import ``package.module:Class``."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise PluginError(f"strategy reference {reference!r} must look like package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r} for strategy {reference!r}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise PluginError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not (inspect.isclass(obj) and issubclass(obj, Strategy)):
        raise PluginError(f"{reference} is not a Strategy subclass")
    return obj


def _strategies_in_file(path: Path) -> list[type[Strategy]]:
    # the same name in every process (str hash() is salted per process): workers find the class a parent named
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=4).hexdigest()
    module_name = f"kinetic_user_strategies.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module_name
    ]


def build_registry(extra_paths: Iterable[Path] = (), *, entry_points_too: bool = True) -> StrategyRegistry:
    registry = StrategyRegistry()
    for folder in default_strategy_dirs():
        registry.load_folder(folder)
    for folder in extra_paths:
        registry.load_folder(Path(folder))
    if entry_points_too:
        registry.load_entry_points()
    return registry
