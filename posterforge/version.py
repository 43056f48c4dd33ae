"""The installed distribution's version, in a module of its own so that any part of the package
can name it without importing the package's lazy API."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("posterforge")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
