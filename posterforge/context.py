"""The context a run works in: the loaded plugins, the weight store and the settings.

Pipelines take a :class:`Context` instead of looking the plugin host or the store up globally, so
a caller (a test, an application embedding posterforge, two stores in one process) says once what
a run works with. :func:`default_context` is what the CLI and the Python API use when the caller
gives none: the process's plugin host (loaded on first use) and the store in
``$POSTERFORGE_HOME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posterforge.plugins import PluginHost
    from posterforge.store import Store


@dataclass(frozen=True)
class Settings:
    """What a run reads from its environment, read once: the posterforge home (weights, compile
    cache) and the plugins ``POSTERFORGE_LOAD_PLUGINS`` allows (None: all)."""

    home: Path
    load_plugins: frozenset[str] | None = None

    @classmethod
    def from_env(cls) -> Settings:
        from posterforge.plugins import allowed_plugins
        from posterforge.store import home

        allowed = allowed_plugins()
        return cls(home(), None if allowed is None else frozenset(allowed))


@dataclass(frozen=True)
class Context:
    """The plugin host, the store and the settings one run uses."""

    host: PluginHost
    store: Store
    settings: Settings = field(default_factory=lambda: Settings.from_env())


def default_context(store: Store | None = None) -> Context:
    """The process's plugin host (loaded once) with ``store`` (default: the home's store)."""
    from posterforge.plugins import get_host
    from posterforge.store import Store

    settings = Settings.from_env()
    return Context(get_host(), store or Store(settings.home), settings)
