"""The errors every layer may raise: an invalid spec, and a permanent refusal with its reason."""

from __future__ import annotations


class InvalidSpecError(ValueError):
    """A spec the operator cannot act on; ``field`` is the CRD path (``spec.path``, ``spec.vault.kvMount``).

    The message names the field the way kube-apiserver does, so the ``Ready=False`` condition
    reads like the 422 a user would have got had the CRD schema caught it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PermanentError(Exception):
    """A problem no retry fixes (a foreign Secret, a missing token key): a human must act.

    ``reason`` is a constant from :mod:`rotator.models.reasons`; the engine puts it and the
    message in ``Ready=False`` (and ``Degraded`` mid-rotation) and re-checks only slowly.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CredentialSecretUnusable(PermanentError):
    """A store's static credential Secret is missing, unlabelled or lacks its key.

    Permanent in that no retry of the same state helps, but the fix is an edit of one Secret
    (often one about to be created: a store applied before its token Secret), and the policy
    should work as soon as it lands: the engine and the store loop re-check it within
    ``Settings.credential_secret_recheck`` instead of the slow permanent-error re-check.
    """
