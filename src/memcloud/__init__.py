"""memcloud: a self-hostable, multi-tenant memcache service."""

__all__ = ["__version__"]

__version__ = "0.1.0"
