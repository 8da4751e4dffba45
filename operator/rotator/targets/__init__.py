"""Where a credential is valid (DESIGN §2). Only `password` (no target system) exists so far."""
