"""Figures the integration tests measure (never asserted), printed after the run."""

from __future__ import annotations

import pytest

#: Seconds from a leader's SIGKILL to the standby's first reconcile, per takeover
#: (filled by tests/integration/test_leader_election.py).
TAKEOVERS: list[float] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TAKEOVERS:
        ordered = sorted(TAKEOVERS)
        terminalreporter.write_line(
            f"leader takeover after SIGKILL ({len(ordered)}): min {ordered[0]:.2f} s, "
            f"median {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s"
        )
