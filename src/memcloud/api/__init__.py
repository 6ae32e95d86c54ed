"""The HTTP API (analytics v1 and v2, deploy hooks, metrics), served in the node's event loop.

See docs/http-api.md. `server.ApiServer` is what `memcloud serve` runs.
"""
