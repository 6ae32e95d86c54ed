"""OpenAPI models of the introspection routes and of insight/latency (reference §2.5,
§2.7): the shapes memcloud.introspection.views builds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "KeyStats",
    "KeyStatsList",
    "LatencySeries",
    "LatencySeriesList",
    "LogLine",
    "PopularItems",
    "Popularity",
    "RecentLogs",
    "TimeSeries",
    "TimeSeriesList",
    "WatchPrefixBody",
    "WatchedPrefix",
    "WatchedPrefixList",
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogLine(_Shape):
    timestamp: str = Field(description="RFC 3339")
    key: str = Field(description="the key (bytes that are not UTF-8 as \\xNN escapes)")
    command: str = Field(description="GET, SET, ADD, REPLACE, APPEND, PREPEND, CAS, DELETE, ...")
    status: str = Field(description="HIT, MISS, STORED, NOT_STORED, EXISTS, NOT_FOUND, ...")
    size: int = Field(description="bytes of the value read or written (never the value)")


class RecentLogs(RootModel[dict[str, list[LogLine]]]):
    """The last 100 requests of the cache on each server ("host:port"), oldest first."""


class Popularity(_Shape):
    name: str
    popularity: int = Field(description="estimated requests in the time slice")


class PopularItems(_Shape):
    time_slice: int = Field(description="nanoseconds the lists cover (2 to 4 minutes)")
    most_hit_keys: list[Popularity]
    most_missed_keys: list[Popularity]
    most_mutated_keys: list[Popularity]
    popular_prefixes: list[Popularity] = Field(
        description="keys up to their first : / . _ or - (empty for a watched prefix)"
    )


class KeyStats(_Shape):
    timestamp: str
    name: str
    size: int = Field(description="bytes of the value, 0 when not in the cache")
    hit_count: int
    miss_count: int
    mutation_count: int
    in_cache: bool


class KeyStatsList(RootModel[list[KeyStats]]):
    pass


class TimeSeries(_Shape):
    name: Literal["compound_stats", "prefix_stats"]
    columns: list[str]
    values: list[list[str | float | None]] = Field(
        description="time, num_keys, total_size, then hits, misses and mutations per second"
    )


class TimeSeriesList(RootModel[list[TimeSeries]]):
    pass


class WatchedPrefix(_Shape):
    id: int
    name: str


class WatchedPrefixList(RootModel[list[WatchedPrefix]]):
    pass


class WatchPrefixBody(_Shape):
    name: str = Field(description="1 to 250 bytes, no space or control character")


class LatencySeries(_Shape):
    name: Literal["latency"]
    tags: dict[str, str] = Field(description='{"server": "host:port"}')
    columns: list[str]
    values: list[list[str | float]] = Field(description="time, mean nanoseconds of a get")


class LatencySeriesList(RootModel[list[LatencySeries]]):
    pass
