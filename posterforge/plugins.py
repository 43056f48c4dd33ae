"""Plugin loading: entry points in the ``posterforge`` group, loaded once, failures isolated.

Each hook implementation is called on its own, so one plugin that raises is recorded against that
plugin (``posterforge plugins`` shows it) and the rest keep working.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from posterforge import hookspecs
from posterforge.models import Generator, Translator
from posterforge.registry import Registry
from posterforge.training.spec import TrainerSpec
from posterforge.weights import Importer, WeightSource

ENTRY_POINT_GROUP = "posterforge"
ENV_LOAD = "POSTERFORGE_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "hooks": self.hooks,
            "errors": self.errors,
        }


class PluginHost:
    """The loaded plugins and what they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.translators: Registry[Translator] = Registry("translator", Translator)
        self.generators: Registry[Generator] = Registry("generator", Generator)
        self.importers: dict[str, Importer] = {}
        self.weight_sources: dict[str, WeightSource] = {}
        self.trainers: dict[str, TrainerSpec] = {}
        self._commands_added: set[int] = set()

    # -- loading ----------------------------------------------------------------------------------
    def load_entry_points(self, allowed: set[str] | None) -> None:
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen or (allowed is not None and ep.name not in allowed):
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.version if dist else None, ep.value)
            self.plugins[ep.name] = info
            try:
                self.add(ep.load(), ep.name, info)
            except Exception as e:  # a broken plugin must not break the rest
                info.errors.append(f"load failed: {type(e).__name__}: {e}")

    def add(self, module: object, name: str, info: PluginInfo | None = None) -> None:
        """Register a plugin object (module or class instance) under ``name``."""
        if info is None:
            info = self.plugins.setdefault(name, PluginInfo(name, None, repr(module)))
        self.pm.register(module, name=name)
        info.hooks = sorted(impl.name for impl in self._impls_of(module))
        self._collect(name, info)

    def remove(self, name: str) -> None:
        """Unregister a plugin and drop what it registered (tests use this in ``finally``)."""
        self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._rebuild()

    def _impls_of(self, plugin: object) -> list[Any]:
        return [
            caller
            for caller in self.pm.get_hookcallers(plugin) or []
            if caller.name in hookspecs.HOOK_NAMES
        ]

    def _collect(self, name: str, info: PluginInfo) -> None:
        """Run one plugin's register_* hooks, recording any failure against it."""
        plugin = self.pm.get_plugin(name)
        hooks: list[tuple[str, Callable[[Any], None]]] = [
            ("register_translators", lambda cls: self.translators.add(cls, name)),
            ("register_generators", lambda cls: self.generators.add(cls, name)),
            ("register_importers", lambda imp: self.importers.setdefault(imp.name, imp)),
            ("register_weight_sources", lambda src: self.weight_sources.setdefault(src.name, src)),
            ("register_trainers", lambda spec: self.trainers.setdefault(spec.name, spec)),
        ]
        for hook_name, register in hooks:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(register=register)
                except Exception as e:
                    info.errors.append(f"{hook_name} failed: {type(e).__name__}: {e}")

    def _rebuild(self) -> None:
        self.translators = Registry("translator", Translator)
        self.generators = Registry("generator", Generator)
        self.importers, self.weight_sources, self.trainers = {}, {}, {}
        for name, info in self.plugins.items():
            info.errors = [e for e in info.errors if e.startswith("load failed")]
            if self.pm.get_plugin(name) is not None:
                self._collect(name, info)

    def add_commands(self, app: Any) -> None:
        """Let plugins add CLI commands (once per app)."""
        if id(app) in self._commands_added:
            return
        self._commands_added.add(id(app))
        for impl in self.pm.hook.register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            try:
                impl.function(app=app)
            except Exception as e:
                if name in self.plugins:
                    self.plugins[name].errors.append(
                        f"register_commands failed: {type(e).__name__}: {e}"
                    )


_host: PluginHost | None = None


def allowed_plugins() -> set[str] | None:
    """``POSTERFORGE_LOAD_PLUGINS``: unset means all, empty means none, else a comma list."""
    value = os.environ.get(ENV_LOAD)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def get_host() -> PluginHost:
    """Load the plugins on first call; later calls return the same host (idempotent)."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points(allowed_plugins())
        _host = host
    return _host


def reset() -> None:
    """Forget loaded plugins so the next ``get_host()`` loads again (for tests)."""
    global _host
    _host = None
