"""NATS URLs as the deployment writes them: credentials in the URL, a cluster's seeds by commas."""

from shared.bus import connection_options


def test_credentials_are_taken_out_of_the_urls() -> None:
    options = connection_options(
        "nats://ingest:0a1b@nats:4222,nats://ingest:0a1b@nats-2:4222, nats://ingest:0a1b@nats-3:4222")
    assert options == {"servers": ["nats://nats:4222", "nats://nats-2:4222", "nats://nats-3:4222"],
                       "user": "ingest", "password": "0a1b"}


def test_plain_and_tls_urls() -> None:
    assert connection_options("nats://127.0.0.1:4222") == {
        "servers": ["nats://127.0.0.1:4222"], "user": None, "password": None}
    assert connection_options("tls://alerts:p%40ss@nats.example:4222") == {
        "servers": ["tls://nats.example:4222"], "user": "alerts", "password": "p@ss"}
