"""Tenancy (DESIGN §6): which store a policy may use, where in it, and as whom.

``resolve`` is pure: a policy's ``storeRef`` + ``path`` and the store object become a location
confined to the namespace's prefix, or a refusal naming the field. ``identity`` mints tokens for a
service account of the policy's namespace (TokenRequest), the only identity sent to a store.
"""
