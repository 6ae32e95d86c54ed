"""memcloud: a self-hostable, multi-tenant memcache service."""

from memcloud import native as _native

__all__ = ["__version__"]

__version__ = "0.1.0"

# Before any data-plane module is imported: compiled modules or their sources (see native).
_native.select()
