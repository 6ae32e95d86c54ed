"""Storage: per-cache keyspaces with memory limits, LRU eviction, expiry and stats.

Imports nothing of memcloud above it.
"""
