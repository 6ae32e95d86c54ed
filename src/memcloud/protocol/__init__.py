"""Sans-IO memcache protocols: bytes in, commands out; replies rendered to bytes.

Imports only the standard library: no sockets, no asyncio, no storage.
"""
