"""Stats in one place: what each name is (`names`), how nodes' and samples' numbers combine
(`aggregate`), and memcached's `stats` replies and a node's report (`report`).

Storage keeps the counters themselves (`storage.stats.CacheStats`, bumped by `Cache`'s
methods); everything above reads them through this package.
"""
