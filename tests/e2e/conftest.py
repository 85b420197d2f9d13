from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

ClientFactory = Callable[..., AsyncTestClient[Litestar]]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The real app (lifespan, forwarder and all) on a real Redis."""
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def app_with(settings: Settings) -> Callable[..., Litestar]:
    """The app with some settings changed."""

    def build(**changes: object) -> Litestar:
        return create_app(msgspec.structs.replace(settings, **changes))

    return build
