import pytest

from shared.http_auth import token_from_header


@pytest.mark.parametrize("header, token", [
    ("Bearer rc_abc", "rc_abc"), ("bearer  rc_abc ", "rc_abc"), ("Basic dXNlcg==", None),
    ("Bearer", None), ("", None), (None, None), ("rc_abc", None),
])
def test_the_token_is_read_from_a_bearer_header(header, token) -> None:
    assert token_from_header(header) == token
