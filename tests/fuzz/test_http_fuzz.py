"""Each service's HTTP API fuzzed from its own OpenAPI schema (schemathesis), with a valid token,
against the real services on NATS and PostgreSQL: no 500 and no crash, every answer conforms to
the schema, data outside the schema is refused, and every 4xx explains itself in the project's
shape (`errors`: field, code, Chinese and English message).

The default run is 50 cases per operation and mode, the same ones every run; the `slow` run adds
150 new ones each time."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.fuzz.conftest import FuzzSystem

# The thorough run's cases are drawn anew each run, so runs add up; 150 (not 300) keeps the four
# services' thorough runs under two minutes together.
QUICK, THOROUGH = 50, 150
# Business rules refuse much that the schema allows (an unknown unit, a day outside the window,
# a node outside the token's area): schema-valid data is not promised a 2xx.
EXCLUDED = [positive_data_acceptance]
# A bulk request reads its reports one by one: a malformed one is refused in its own result
# (code 422, kept) and the others go in, so the request as a whole is a 200.
PER_ITEM = ("/v1/reports/bulk", "/v1/reports/bulk/csv")


# Answered in DHIS2's own shape (a WebMessage with an ImportSummary): a 409 explains itself in
# its conflicts, each carrying the project's field, code and messages in `objects`.
DHIS2_IMPORT = "/v1/import/dhis2/dataValueSets"


def explained(ctx, response, case) -> None:
    """Every 4xx names the field, a code and the reason in both languages."""
    if not 400 <= response.status_code < 500:
        return None
    if case.path == DHIS2_IMPORT and response.status_code == 409:
        conflicts = response.json()["response"]["conflicts"]
        assert conflicts, response.text[:300]
        for conflict in conflicts:
            assert conflict["value"] and all(
                conflict["objects"][k] for k in ("field", "code", "message_zh", "message_en"))
        return None
    try:
        errors = response.json()["errors"]
    except Exception as exc:
        raise AssertionError(f"{response.status_code} without `errors`: "
                             f"{response.text[:300]}") from exc
    assert isinstance(errors, list) and errors, f"empty errors: {response.text[:300]}"
    for error in errors:
        assert {"field", "code", "message_zh", "message_en"} <= set(error), error
        assert all(isinstance(error[k], str) and error[k]
                   for k in ("field", "code", "message_zh", "message_en")), error
    return None


def _runner(fuzz_system: FuzzSystem, strategy, examples: int, counts: dict[str, int],
            key: str, excluded: list):
    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, derandomize=examples == QUICK,
              database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])
    def run(case) -> None:
        counts[key] += 1
        case.call_and_validate(timeout=60,
                               additional_checks=[explained], excluded_checks=excluded)

    return run


def fuzz(fuzz_system: FuzzSystem, service: str, examples: int) -> dict[str, int]:
    """Every operation of the service, in positive and negative mode, `examples` cases each;
    the first failure of each is collected, and all are reported together."""
    url = f"{fuzz_system.url(service)}/openapi.json"
    schema = schemathesis.openapi.from_url(url)
    raw = httpx.get(url, timeout=30).json()["paths"]
    failures: list[str] = []
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        spec = raw[operation.path][operation.method.lower()]
        takes = spec.get("parameters") or spec.get("requestBody")
        # Nothing to send that breaks the schema of an operation that takes nothing.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if takes else [])
        for mode in modes:
            key = f"{operation.method.upper()} {operation.path} ({mode.value})"
            counts[key] = 0

            excluded = EXCLUDED + ([negative_data_rejection] if operation.path in PER_ITEM
                                   else [])
            # The token is part of every case, so that a negative case never counts on its
            # absence to be refused while a valid one is sent anyway.
            strategy = operation.as_strategy(mode, headers=fuzz_system.auth())
            run = _runner(fuzz_system, strategy, examples, counts, key, excluded)
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # one report for every operation
                failures.append(f"{key}: {str(exc)[:1500]}")
    assert fuzz_system.alive() == dict.fromkeys(fuzz_system.services), "a service died"
    total = sum(counts.values())
    print(f"\n{service}: {total} cases over {len(counts)} operation×mode")
    assert not failures, "\n\n".join(failures)
    return counts


@pytest.mark.parametrize("service", ["ingest", "aggregate", "alerts", "ledger"])
def test_fuzz(fuzz_system: FuzzSystem, service: str) -> None:
    fuzz(fuzz_system, service, QUICK)


@pytest.mark.slow
@pytest.mark.parametrize("service", ["ingest", "aggregate", "alerts", "ledger"])
def test_fuzz_thorough(fuzz_system: FuzzSystem, service: str) -> None:
    fuzz(fuzz_system, service, THOROUGH)
