"""Control plane: caches (tenants), credentials and their capabilities, persisted in a store.

base.py is the `ControlStore` interface and its errors, which every caller uses; rules.py
the rules every store checks above its database; models.py the records; sqlite/ the SQLite
store (the only code that knows `sqlite3`); memory.py a store in memory for unit tests;
open.py finds and opens a data directory's store.
"""
