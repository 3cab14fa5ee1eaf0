"""The gateway's OpenAPI, fuzzed by schemathesis against the running fleet: no input is a 500.

Every operation gets generated requests (valid and invalid: huge integers, odd strings, missing
fields) as an authenticated user; then the stateful phase follows the schema's links (a created
conversation to its messages, a posted message to its edit and delete) in random sequences.
Bounded (``max_examples``) so it takes a minute or two on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, Response

from parley.fleet import Fleet

pytestmark = [pytest.mark.e2e]

Register = Callable[[], Any]

BOUNDED = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests every run: a failure here reproduces
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # a server error is reported, not shrunk for minutes
)


def _server_error(case: Case, response: Response) -> str | None:
    if response.status_code < 500:
        return None
    return f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"


def _fuzz(operation: Any, base_url: str, headers: dict[str, str], errors: list[str]) -> None:
    @BOUNDED
    @given(case=operation.as_strategy())
    def fuzz(case: Case) -> None:
        if (
            problem := _server_error(case, case.call(base_url=base_url, headers=headers))
        ) is not None:
            errors.append(problem)

    fuzz()


@pytest.fixture(scope="module")
def schema(fleet: Fleet) -> Any:
    return schemathesis.openapi.from_url(f"{fleet.api}/openapi.json")


def test_no_operation_answers_generated_input_with_a_server_error(
    fleet: Fleet, schema: Any, register: Register
) -> None:
    errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:
        # A user per operation: one that logs itself out or changes its password spoils no other.
        _fuzz(operation, fleet.api, {"Authorization": f"Bearer {register().access_token}"}, errors)
    assert not errors, "\n".join(sorted(set(errors)))


def test_linked_sequences_of_operations_never_answer_a_server_error(
    fleet: Fleet, schema: Any, register: Register
) -> None:
    errors: list[str] = []

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.headers = {"Authorization": f"Bearer {register().access_token}"}

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": fleet.api, "headers": self.headers}

        def validate_response(self, response: Response, case: Case, **_: Any) -> None:
            if (problem := _server_error(case, response)) is not None:
                errors.append(problem)

    Sequences.run(
        settings=settings(BOUNDED, max_examples=20, stateful_step_count=8, phases=[Phase.generate])
    )
    assert not errors, "\n".join(sorted(set(errors)))
