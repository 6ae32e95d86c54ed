"""Control plane: caches (tenants), credentials and their capabilities, the deployment's
nodes, the flush log and the stats history, persisted in a store.

base.py is the `ControlStore` interface and its errors, which every caller uses; rules.py
the rules every store checks above its database; models.py the records; sql/ the store's
SQL, written once; sqlite/ and postgres/ the two engines it runs on (the only code that
knows `sqlite3` or `psycopg`); memory.py a store in memory for unit tests; open.py opens the
store a data directory or a `--control-url` names; audit.py the flush log's writer.
"""
