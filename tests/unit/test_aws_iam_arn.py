"""Which identity STS may answer for a key of the rotated IAM user (verify's last check)."""

from __future__ import annotations

import pytest

from rotator.targets.aws_iam import is_user_arn


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::123456789012:user/orders-app", True),
        ("arn:aws:iam::123456789012:user/shop/orders-app", True),  # a user with a path
        ("arn:aws-us-gov:iam::123456789012:user/orders-app", True),
        ("arn:aws:iam::123456789012:user/orders-app-2", False),
        ("arn:aws:iam::123456789012:user/x-orders-app", False),
        ("arn:aws:iam::123456789012:role/orders-app", False),
        ("arn:aws:sts::123456789012:user/orders-app", False),  # moto's answer for a key it does not know
        ("arn:aws:sts::123456789012:assumed-role/orders-app/session", False),
    ],
)
def test_only_the_users_own_arn_counts(arn: str, expected: bool) -> None:
    assert is_user_arn(arn, "orders-app") is expected


def test_user_name_punctuation_is_literal() -> None:
    assert is_user_arn("arn:aws:iam::1:user/a+b=c,d.e@f", "a+b=c,d.e@f")
    assert not is_user_arn("arn:aws:iam::1:user/aXb", "a.b")
