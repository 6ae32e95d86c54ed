"""Introspection: what a cache's requests look like (hot keys, prefixes, recent requests,
key stats, watched prefixes) and how fast its nodes answer (the latency probe).

`node` answers one node's view of a cache (from storage/insight.py's recorder); `views`
merges the nodes' views into the hosted service's shapes; `probe` times a get on every node
and hands the nodes their caches' watched prefixes.
"""
