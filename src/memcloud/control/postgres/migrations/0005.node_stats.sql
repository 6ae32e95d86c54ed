-- What each node tells the registry for the operator's server panel (SQLite's migration 8):
-- when it registered (`started_at`, epoch seconds by the database's clock), its memory
-- budget in bytes (0: no bound), its --max-connections, and its open memcache connections,
-- renewed with each heartbeat.
-- depends: 0002.nodes

ALTER TABLE nodes ADD COLUMN started_at DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN memory BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN max_connections BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN connections BIGINT NOT NULL DEFAULT 0;
-- A node registered before knows no start: count its uptime from its last heartbeat.
UPDATE nodes SET started_at = heartbeat_at;
