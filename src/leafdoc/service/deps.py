"""What routes get injected: the app's state (settings, catalog, store, registry, serving model,
queue, metrics, the record of answers, the feedback rate limit, monitoring) and the admin checks."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from leafdoc.core.errors import Unauthorized
from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog
from leafdoc.data.store import BlobStore
from leafdoc.model_versions import Registry
from leafdoc.service.errors import AdminDisabled
from leafdoc.service.jobs import JobQueue, QueueCheck
from leafdoc.service.monitoring import Monitor
from leafdoc.service.predictionlog import PredictionLog
from leafdoc.service.prometheus import ServiceMetrics
from leafdoc.service.ratelimit import RateLimiter, RedisRateLimiter
from leafdoc.service.serving import ModelHolder


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    store: BlobStore
    registry: Registry
    holder: ModelHolder
    queue: JobQueue
    metrics: ServiceMetrics
    prediction_log: PredictionLog
    feedback_limit: RateLimiter | RedisRateLimiter
    monitor: Monitor
    queue_check: QueueCheck  # whether the job queue answers, for /readyz


async def get_state(request: Request) -> AppState:
    """async though it awaits nothing: FastAPI runs a plain `def` dependency in its threadpool, a thread hand-off
    and back on every request (docs/load-tests.md, "The dependencies' threadpool hand-off")."""
    return request.app.state.leafdoc


_bearer = HTTPBearer(auto_error=False, description="The admin token (LEAFDOC_ADMIN_TOKEN).")
_header = APIKeyHeader(name="X-Admin-Token", auto_error=False, description="The admin token, as a header.")


async def require_admin(  # async for the same reason as get_state: it does no I/O
    state: AppState = Depends(get_state),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> None:
    """The admin check, in the route's signature for OpenAPI; middleware.AdminGate has made it (and counted a wrong
    token) before the body was read."""
    check_admin_token(state.settings.admin_token, (bearer.credentials if bearer else None) or header)


# Said after the hint of a refused monitoring request: the operator may open the figures to everyone instead.
MONITORING_OPENS = " Or set LEAFDOC_MONITORING_OPEN=true on the server to show the monitoring figures to anyone."


async def require_monitoring_token(
    state: AppState = Depends(get_state),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> None:
    """The admin check of GET /v1/monitoring (a business's volumes and the diseases its growers see), unless the
    operator opened it (`monitoring_open`); AdminGate has made it first, as for require_admin (app.admin_routes)."""
    if not state.settings.monitoring_open:
        given = (bearer.credentials if bearer else None) or header
        check_admin_token(state.settings.admin_token, given, MONITORING_OPENS)


def admin_token_given(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token a request sends, from its raw ASGI headers: `Authorization: Bearer <token>` or `X-Admin-Token`."""
    bearer = header = None
    for key, value in headers:
        if key == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                bearer = credentials
        elif key == b"x-admin-token":
            header = value.decode("latin-1") or None
    return bearer or header


def check_admin_token(expected: str | None, given: str | None, opens: str = "") -> None:
    """Raise unless `given` is the admin token; `opens` is added to the hint of a refusal the operator could lift
    another way (MONITORING_OPENS)."""
    if not expected:
        raise AdminDisabled(
            "admin routes are disabled on this server: no admin token is configured.",
            hint="Start the server with LEAFDOC_ADMIN_TOKEN set." + opens,
        )
    if not given:
        raise Unauthorized(
            "this route needs the admin token.",
            hint="Send `Authorization: Bearer <token>` (or `X-Admin-Token: <token>`)." + opens,
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise WrongToken("the admin token is wrong.", hint="Check LEAFDOC_ADMIN_TOKEN on the server.")


class WrongToken(Unauthorized):
    """A token was sent and it is not the admin token (what AdminGate counts per client)."""
