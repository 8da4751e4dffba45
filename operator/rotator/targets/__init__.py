"""Where a credential is valid (DESIGN §2): the ``Target`` protocol and its kinds.

``password`` has no target system (a random string, valid wherever the consumer compares it);
``postgresRole`` lives in a PostgreSQL server. The engine drives every kind through
:class:`rotator.targets.base.Target` only.
"""
