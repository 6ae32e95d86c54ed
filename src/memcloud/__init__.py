"""memcloud: a self-hostable, multi-tenant memcache service."""

from importlib import metadata as _metadata

from memcloud import native as _native

__all__ = ["__version__"]

try:
    # The installed distribution's version (pyproject.toml's), so there is one to bump.
    __version__ = _metadata.version("memcloud")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# Before any data-plane module is imported: compiled modules or their sources (see native).
_native.select()
