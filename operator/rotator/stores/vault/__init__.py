"""Vault / OpenBao KV v2: the store (``kv2``), its HTTP client (``client``) and auth methods (``auth``)."""
