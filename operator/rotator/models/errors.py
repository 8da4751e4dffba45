"""The one exception the models raise: an invalid spec is permanent, so it must say where."""

from __future__ import annotations


class InvalidSpecError(ValueError):
    """A spec the operator cannot act on; ``field`` is the CRD path (``spec.store.vault.path``).

    The message names the field the way kube-apiserver does, so the ``Ready=False`` condition
    reads like the 422 a user would have got had the CRD schema caught it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
