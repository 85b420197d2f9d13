"""Property-based fuzzing of every route from the app's own OpenAPI document.

A real server process (the production uvicorn command) on a free port, a real Redis, and
schemathesis generating requests from /schema/openapi.json — valid ones and mutated ones.
Whatever arrives: never a 5xx, and every 4xx says what is wrong in the JSON error shape.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from service.bench.servers import SERVICE_FACTORY, clean_environment, uvicorn_command
from service.redis_server import free_port

API_KEY = "fuzz-key"
# The admin routes are fuzzed with their own key, so their inputs are reached, not only 401s.
ADMIN_KEY = "fuzz-admin-key"
INPUTLESS = {"GET /health", "GET /ready", "GET /metrics", "GET /admin/outbox"}
ROUTES = 13


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[str]:
    port = free_port()
    env = clean_environment(
        {
            "RISKWIRE_REDIS_URL": redis_url,
            "RISKWIRE_REDIS_PREFIX": f"rwfuzz-{port}",
            "RISKWIRE_API_KEYS": API_KEY,
            "RISKWIRE_ADMIN_API_KEYS": ADMIN_KEY,
            "RISKWIRE_HASH_KEY": "fuzz-hash-key",
            "RISKWIRE_FORWARDER_ENABLED": "false",
            "RISKWIRE_LOG_LEVEL": "WARNING",
        }
    )
    command = uvicorn_command(SERVICE_FACTORY, port)
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"rwfuzz-{port}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def operations(server: str) -> list[APIOperation[Any, Any, Any, Any]]:
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    found: list[APIOperation[Any, Any, Any, Any]] = []
    for result in schema.get_all_operations():
        # An operation the fuzzer cannot even read is a broken document: fail loudly.
        assert not isinstance(result, Err), result
        found.append(result.ok())
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_route_answers_5xx_and_every_4xx_names_the_problem(
    server: str, mode: GenerationMode
) -> None:
    checked: list[str] = []
    for operation in operations(server):
        key = ADMIN_KEY if operation.path.startswith("/admin/") else API_KEY
        strategy = operation.as_strategy(
            generation_mode=mode, headers={"Authorization": f"Bearer {key}"}
        )

        @settings(
            max_examples=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=strategy)
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call(timeout=5)
            assert response.status_code < 500, (case.as_curl_command(), response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["status"] == response.status_code, response.text
                assert error["message"], response.text

        try:
            check()
        except Unsatisfiable:
            # Nothing to mutate in a route without parameters or body.
            assert mode is GenerationMode.NEGATIVE and operation.label in INPUTLESS
            continue
        checked.append(operation.label)
    # Every route of the app was fuzzed (and every route with inputs, with broken inputs).
    assert len(checked) == (
        ROUTES if mode is GenerationMode.POSITIVE else ROUTES - len(INPUTLESS)
    ), checked
