"""schemathesis against the generated OpenAPI document: no 5xx, no answer outside its schema,
no status code the document does not list (errors included: they share one documented shape).

Bounded so the suite stays fast: a few generated requests per endpoint, no shrinking. The server
runs unsupervised, so `system/restart` answers 409 instead of restarting it mid-run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ADMIN_TOKEN, PREFIX
from tests.support import running_server, write_scripts

EXAMPLES_PER_ENDPOINT = 4


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    root: Path = tmp_path_factory.mktemp("fuzzed")
    write_scripts(root, {"hello.ts": "// @description hi\nreturn 'hello';\n",
                         "api/[id].ts": "return metadata.parameters;\n"})
    env = {"WEXEC_API_TOKEN": ADMIN_TOKEN, "WEXEC_RESTART_ON_CRASH": "false"}
    with running_server(["--scripts", str(root)], env=env) as base:
        schema = schemathesis.openapi.from_url(f"{base}{PREFIX}/openapi.json")
        schema.config.base_url = f"{base}{PREFIX}"
        yield schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ENDPOINT, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_every_answer_is_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance,
                                   status_code_conformance],
                           timeout=30)
