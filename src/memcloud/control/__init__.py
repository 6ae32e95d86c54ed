"""Control plane: caches (tenants), credentials and their capabilities, persisted in a store."""
