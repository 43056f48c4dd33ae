"""Plugin loading: entry points in the ``posterforge`` group, loaded once, failures isolated.

Each plugin's hook implementations are called through pluggy on their own (a subset caller per
plugin), so an implementation may omit arguments as pluggy allows, and one plugin that raises,
or calls ``sys.exit()``, is recorded against that plugin (``posterforge plugins`` shows it) while
the rest keep working. First-party plugins (those of the ``posterforge`` distribution) load first,
so a third-party plugin can never take a built-in name: its clash is reported against it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from typing import Any

import pluggy

from posterforge import hookspecs, presets
from posterforge.family import Family
from posterforge.models import Extractor, Generator, Translator
from posterforge.registry import Registry, instance_of, subclass_of
from posterforge.weights import Importer, WeightSource

ENTRY_POINT_GROUP = "posterforge"
ENV_LOAD = "POSTERFORGE_LOAD_PLUGINS"
BUILTIN_DIST = "posterforge"


class Stage(StrEnum):
    """Where a plugin failed: importing it, registering it with pluggy, or in one of its hooks."""

    LOAD = "load failed"
    REGISTER = "register failed"
    HOOK = "hook"


class PluginError(str):
    """One failure of a plugin: its text as ``plugins`` shows it (``load failed: ImportError:
    ...``), with the ``stage`` and the ``detail`` kept apart so that nobody parses the text."""

    stage: Stage
    detail: str

    def __new__(cls, stage: Stage, detail: str, label: str | None = None) -> PluginError:
        self = super().__new__(cls, f"{label or stage}: {detail}")
        self.stage, self.detail = stage, detail
        return self


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "registered": self.registered,
            "errors": self.errors,
        }


class _Refused(Exception):
    """Several registrations of one call refused, each with its reason."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _fail(stage: Stage, e: BaseException, label: str | None = None) -> PluginError:
    if isinstance(e, SystemExit):
        return PluginError(stage, f"called sys.exit({e.code!r})", label)
    return PluginError(stage, f"{type(e).__name__}: {e}", label)


class PluginHost:
    """The loaded plugins and what they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.unknown_requested: list[str] = []  # POSTERFORGE_LOAD_PLUGINS names nothing has
        self._commands_added: set[int] = set()
        self._new_registries()

    def _new_registries(self) -> None:
        self.translators: Registry[type[Translator]] = Registry(
            "translator", subclass_of(Translator)
        )
        self.generators: Registry[type[Generator]] = Registry("generator", subclass_of(Generator))
        self.families: Registry[Family] = Registry("family", instance_of(Family))
        self.importers: Registry[Importer] = Registry("importer", instance_of(Importer))
        self.weight_sources: Registry[WeightSource] = Registry(
            "weight source", instance_of(WeightSource)
        )
        self.extractors: Registry[Extractor] = Registry("feature extractor", instance_of(Extractor))
        self.presets: dict[str, Registry[presets.Preset]] = {
            kind: Registry(f"{kind} preset") for kind in presets.KINDS
        }

    def _add_presets(self, folder: Any, plugin: str) -> None:
        """Each preset of the folder on its own: one clash does not drop the others."""
        clashes = []
        for preset in presets.scan(folder):
            try:
                self.presets[preset.kind].add(preset, plugin)
            except Exception as e:
                clashes.append(str(e))
        if clashes:
            raise _Refused(clashes)

    # (hook, what the plugins listing calls it, register function)
    def _hooks(self, plugin: str) -> list[tuple[str, str, Callable[[Any], None]]]:
        return [
            ("register_translators", "translators", lambda c: self.translators.add(c, plugin)),
            ("register_generators", "generators", lambda c: self.generators.add(c, plugin)),
            ("register_families", "families", lambda f: self.families.add(f, plugin)),
            ("register_presets", "presets", lambda d: self._add_presets(d, plugin)),
            ("register_importers", "importers", lambda i: self.importers.add(i, plugin)),
            ("register_weight_sources", "weights", lambda s: self.weight_sources.add(s, plugin)),
            (
                "register_feature_extractors",
                "extractors",
                lambda x: self.extractors.add(x, plugin),
            ),
        ]

    # -- loading ----------------------------------------------------------------------------------
    def load_entry_points(self, allowed: set[str] | None) -> None:
        found: dict[str, metadata.EntryPoint] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep)
        if allowed is not None:
            self.unknown_requested = sorted(allowed - set(found))

        def builtin(ep: metadata.EntryPoint) -> bool:
            dist = getattr(ep, "dist", None)
            return dist is not None and dist.metadata["Name"] == BUILTIN_DIST

        ordered = sorted(found.values(), key=lambda ep: (not builtin(ep), ep.name))
        for ep in ordered:
            if allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.version if dist else None, ep.value, builtin(ep))
            self.plugins[ep.name] = info
            try:
                module = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # a broken plugin (even one calling exit) must not stop us
                info.errors.append(_fail(Stage.LOAD, e))
                continue
            self.add(module, ep.name, info)

    def add(self, module: object, name: str, info: PluginInfo | None = None) -> None:
        """Register a plugin object (module or class instance) under ``name``."""
        if info is None:
            info = self.plugins.setdefault(name, PluginInfo(name, None, repr(module)))
        try:
            self.pm.register(module, name=name)
        except Exception as e:  # e.g. a hook implementation with an unknown argument
            info.errors.append(_fail(Stage.REGISTER, e))
            return
        info.hooks = sorted(
            c.name for c in self.pm.get_hookcallers(module) or [] if c.name in hookspecs.HOOK_NAMES
        )
        self._collect(name, info)

    def remove(self, name: str) -> None:
        """Unregister a plugin and drop what it registered (tests use this in ``finally``)."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._rebuild()

    def _call_one(self, plugin: object, hook_name: str, **kwargs: Any) -> None:
        """Call one plugin's implementation of a hook, through pluggy's normal calling."""
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)

    def _collect(self, name: str, info: PluginInfo) -> None:
        """Run one plugin's register_* hooks, recording any failure or clash against it."""
        plugin = self.pm.get_plugin(name)
        for hook_name, _label, add in self._hooks(name):
            if hook_name not in info.hooks:
                continue

            def register(item: Any, add: Callable[[Any], None] = add, hook: str = hook_name):
                try:
                    add(item)
                except _Refused as e:
                    info.errors += [PluginError(Stage.HOOK, r, hook) for r in e.reasons]
                except Exception as e:  # a clash or a wrong type: refuse this one, keep going
                    info.errors.append(PluginError(Stage.HOOK, str(e), hook))

            try:
                self._call_one(plugin, hook_name, register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                info.errors.append(_fail(Stage.HOOK, e, f"{hook_name} failed"))
        labels = [label for _h, label, _a in self._hooks(name)]
        info.registered = {k: names for k in labels if (names := self._names(k, name))}

    def _names(self, label: str, plugin: str) -> list[str]:
        if label == "presets":
            return [f"{k}/{n}" for k, reg in self.presets.items() for n in reg.by_plugin(plugin)]
        registry = self.weight_sources if label == "weights" else getattr(self, label)
        return registry.by_plugin(plugin)

    def _rebuild(self) -> None:
        self._new_registries()
        for name, info in self.plugins.items():
            info.errors = [e for e in info.errors if e.stage in (Stage.LOAD, Stage.REGISTER)]
            if self.pm.get_plugin(name) is not None:
                self._collect(name, info)

    def add_commands(self, app: Any) -> None:
        """Let plugins add CLI commands (once per app)."""
        if id(app) in self._commands_added:
            return
        self._commands_added.add(id(app))
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin) or "?"
            if "register_commands" not in getattr(self.plugins.get(name), "hooks", []):
                continue
            try:
                self._call_one(plugin, "register_commands", app=app)
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                if name in self.plugins:
                    failed = _fail(Stage.HOOK, e, "register_commands failed")
                    self.plugins[name].errors.append(failed)

    def builtin_plugins(self) -> set[str]:
        return {n for n, info in self.plugins.items() if info.builtin}


_host: PluginHost | None = None


def allowed_plugins() -> set[str] | None:
    """``POSTERFORGE_LOAD_PLUGINS``: unset means all, empty means none, else a comma list."""
    value = os.environ.get(ENV_LOAD)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def discover(allowed: set[str] | None = None) -> PluginHost:
    """A new host with the installed plugins loaded (all of them, or those named in
    ``allowed``), apart from the process's :func:`get_host`: e.g. for a plugin's own test that
    posterforge finds it through its entry point."""
    host = PluginHost()
    host.load_entry_points(allowed)
    return host


def get_host() -> PluginHost:
    """Load the plugins on first call; later calls return the same host (idempotent)."""
    global _host
    if _host is None:
        _host = discover(allowed_plugins())
    return _host


def reset() -> None:
    """Forget loaded plugins so the next ``get_host()`` loads again (for tests)."""
    global _host
    _host = None
