"""The hub's read API, live events and dashboard over HTTP (aiohttp; DESIGN.md 7; issue 5).

``create_app(settings, deps)`` builds the application; ``serve`` runs it on a loopback port
beside the hub service (``hub up --http-port``). Handlers are thin: authenticate the bearer
token, parse the query, call :mod:`hub.gateway.views`, encode. Only this module turns typed
errors into HTTP statuses: 401 unauthenticated, 403 out of scope, 404 not found, 400 bad
input, 409 conflict, 503 unavailable. The API reads the projections only; it changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, cast

import msgspec
import structlog
from aiohttp import web

from hub import ids
from hub.clock import Clock
from hub.errors import (
    ConflictError,
    HubError,
    UnavailableError,
    ValidationError,
    VerificationError,
)
from hub.gateway import _wire, dashboard, views
from hub.gateway.access import (
    Forbidden,
    NotFound,
    Principal,
    Unauthenticated,
    accreditation_problem,
)
from hub.gateway.copies import CopySource, case_copies
from hub.gateway.feed import Change, LedgerFeed, Subscription
from hub.gateway.openapi import openapi_json
from hub.gateway.token_store import TokenStore
from hub.ledger.projections.state import HubState
from hub.ledger.projections.stats import GROUPINGS, Grouping
from hub.logs import get_logger
from hub.reports import review_csv, review_html, stats_csv
from hub.settings import HubSettings

__all__ = [
    "DEPS",
    "CheckpointSource",
    "HttpDeps",
    "HttpServer",
    "LedgerReader",
    "create_app",
    "serve",
]

_KEEPALIVE_S = 15.0
_MAX_PAGE = 1000
_SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_KEEPALIVE = Change(-1, "keep-alive", "", None)


class LedgerReader(Protocol):
    """The ledger's bytes by index (``hub.ledger.store.Ledger``)."""

    def read(self, start: int = 0, stop: int | None = None) -> AsyncIterator[tuple[int, bytes]]: ...


class CheckpointSource(Protocol):
    """Signed checkpoint notes by tree size, newest by default (``CheckpointStore``)."""

    async def get(self, size: int | None = None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class HttpDeps:
    """What the API reads: the live state (never written here), the ledger, the live feed, the
    token store, the clock, and the hub's signed checkpoints (when it publishes them)."""

    state: Callable[[], HubState]
    ledger: LedgerReader
    feed: LedgerFeed
    tokens: TokenStore
    clock: Clock
    checkpoints: CheckpointSource | None = None
    copies: CopySource | None = None  # sealed copies for liaison officers (content store)


DEPS = web.AppKey("deps", HttpDeps)
_STREAMS = web.AppKey("streams", set[Subscription])
_TITLE = web.AppKey("title", str)
_log = get_logger("hub.http")


# --- the edge: errors, headers, request logs ---------------------------------------------------


def _status_of(error: HubError) -> int:
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, ValidationError):
        return 400
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, UnavailableError):
        return 503
    return 403 if isinstance(error, VerificationError) else 500


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(value), status=status, content_type="application/json"
    )


def _problem(error: HubError) -> web.Response:
    response = _json(views.ApiError(error=error.code, detail=str(error)), _status_of(error))
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="mla-hub", error="invalid_token"'
    return response


@web.middleware
async def _edge(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    with structlog.contextvars.bound_contextvars(request_id=ids.uuid7()):
        response: web.StreamResponse
        try:
            response = await handler(request)
        except HubError as e:
            response = _problem(e)
        except web.HTTPException as e:
            response = _json(views.ApiError(error="http", detail=e.reason), e.status)
        except Exception:
            _log.exception("http_failed", method=request.method, path=request.path)
            response = _json(views.ApiError(error="internal", detail="internal error"), 500)
        if not response.prepared:
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Content-Security-Policy", "default-src 'none'")
        _log.info("http_request", method=request.method, path=request.path, status=response.status)
        return response


def _principal(request: web.Request) -> Principal:
    deps = request.app[DEPS]
    now = deps.clock.now()
    principal = deps.tokens.authenticate(request.headers.get("Authorization"), now=now)
    reason = accreditation_problem(principal, deps.state(), now)
    if reason is not None:
        raise Unauthenticated(f"authorization: {reason}")
    return principal


def _still_live(deps: HttpDeps, principal: Principal) -> bool:
    now = deps.clock.now()
    return (
        deps.tokens.still_live(principal.token_id, now=now)
        and accreditation_problem(principal, deps.state(), now) is None
    )


def _download(text: str, content_type: str, filename: str) -> web.Response:
    response = web.Response(text=text, content_type=content_type, charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _svg(text: str) -> web.Response:
    response = web.Response(text=text, content_type="image/svg+xml", charset="utf-8")
    response.headers["Content-Security-Policy"] = _SVG_CSP
    return response


# --- handlers ----------------------------------------------------------------------------------


async def _whoami(request: web.Request) -> web.Response:
    return _json(views.whoami(_principal(request)))


async def _status(request: web.Request) -> web.Response:
    principal = _principal(request)
    deps = request.app[DEPS]
    rows = views.status_rows(
        deps.state(),
        principal,
        now=deps.clock.now(),
        case=request.query.get("case") or None,
        authority=_wire.authority(request.query, "authority"),
        overdue=_wire.flag(request.query, "overdue"),
    )
    if _wire.choice(request.query, "format", ("json", "csv")) == "csv":
        return _download(views.status_csv(rows), "text/csv", "status.csv")
    return _json(rows)


async def _trail(request: web.Request) -> web.Response:
    principal = _principal(request)
    return _json(views.trail(request.app[DEPS].state(), principal, request.match_info["case_id"]))


async def _copies(request: web.Request) -> web.Response:
    principal = _principal(request)
    deps = request.app[DEPS]
    if deps.copies is None:
        raise UnavailableError("copies: this API instance reads no content store")
    case_id = request.match_info["case_id"]
    return _json(await case_copies(deps.state(), principal, case_id, deps.copies))


async def _review(request: web.Request) -> web.Response:
    principal = _principal(request)
    deps = request.app[DEPS]
    review = views.review(
        deps.state(),
        principal,
        _wire.authority(request.query, "first"),
        _wire.authority(request.query, "second"),
        since=_wire.date(request.query, "since"),
        until=_wire.date(request.query, "until"),
        now=deps.clock.now(),
    )
    name = f"review-{review.pair[0]}-{review.pair[1]}"
    form = _wire.choice(request.query, "format", ("json", "csv", "html", "svg"))
    if form == "csv":
        return _download(review_csv(review), "text/csv", f"{name}.csv")
    if form == "html":
        response = web.Response(text=review_html(review), content_type="text/html")
        response.headers["Content-Security-Policy"] = _SVG_CSP
        return response
    if form == "svg":
        return _svg(views.review_svg(review))
    return _json(review)


async def _stats(request: web.Request) -> web.Response:
    principal = _principal(request)
    deps = request.app[DEPS]
    by = cast(Grouping, _wire.choice(request.query, "by", GROUPINGS))
    stats = views.stats(deps.state(), principal, by, now=deps.clock.now())
    form = _wire.choice(request.query, "format", ("json", "csv", "svg"))
    if form == "csv":
        return _download(stats_csv(stats), "text/csv", f"stats-by-{by}.csv")
    if form == "svg":
        return _svg(views.stats_svg(stats))
    return _json(stats)


async def _directory(request: web.Request) -> web.Response:
    _principal(request)
    return _json(views.directory(request.app[DEPS].state()))


async def _ledger(request: web.Request) -> web.Response:
    _principal(request).require("operator", "auditor", what="ledger")
    deps = request.app[DEPS]
    size = deps.state().next_index
    start = _wire.integer(request.query, "from", 0, 0, None)
    stop = min(size, start + _wire.integer(request.query, "limit", 100, 1, _MAX_PAGE))
    rows = [_wire.ledger_item(index, data) async for index, data in deps.ledger.read(start, stop)]
    response = _json(rows)
    response.headers["X-Ledger-Size"] = str(size)
    return response


async def _checkpoint(request: web.Request) -> web.Response:
    _principal(request).require("operator", "auditor", "authority", what="checkpoint")
    source = request.app[DEPS].checkpoints
    size = _wire.integer(request.query, "size", -1, -1, None)
    note = None if source is None else await source.get(None if size < 0 else size)
    if note is None:
        raise NotFound(f"checkpoint: none {'yet' if size < 0 else f'of size {size}'}")
    return web.Response(text=note, content_type="text/plain", charset="utf-8")


async def _metrics(request: web.Request) -> web.Response:
    _principal(request).require("operator", "auditor", what="metrics")
    deps = request.app[DEPS]
    text = views.metrics_text(deps.state(), now=deps.clock.now(), streams=deps.feed.subscribers)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _healthz(request: web.Request) -> web.Response:
    return _json(views.Health(status="ok", ledger_entries=request.app[DEPS].state().next_index))


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_json(request.app[_TITLE]), content_type="application/json")


async def _dashboard(request: web.Request) -> web.Response:
    response = web.Response(text=dashboard.PAGE, content_type="text/html")
    response.headers["Content-Security-Policy"] = dashboard.CSP
    return response


# --- server-sent events ------------------------------------------------------------------------


async def _events(request: web.Request) -> web.StreamResponse:
    principal = _principal(request)
    deps = request.app[DEPS]
    response = web.StreamResponse(
        headers={
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.content_type = "text/event-stream"
    subscription = deps.feed.subscribe()
    request.app[_STREAMS].add(subscription)
    try:
        await response.prepare(request)
        hello = {"next_index": deps.state().next_index, "scope": principal.describe()}
        await response.write(_wire.sse("hello", hello))
        while True:
            try:
                change = await asyncio.wait_for(subscription.next(), _KEEPALIVE_S)
            except TimeoutError:
                change = _KEEPALIVE
            if not _still_live(deps, principal):
                detail = "token or accreditation revoked or expired"
                await response.write(_wire.sse("revoked", {"detail": detail}))
                break
            if change is None:
                reason = "overflow" if subscription.overflowed else "shutdown"
                await response.write(_wire.sse("reset", {"reason": reason}))
                break
            if change is _KEEPALIVE:
                await response.write(b": keep-alive\n\n")
                continue
            for chunk in _wire.scoped_events(change, principal, deps.state(), deps.clock.now()):
                await response.write(chunk)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        request.app[_STREAMS].discard(subscription)
        deps.feed.unsubscribe(subscription)
    return response


# --- the application and its lifecycle ---------------------------------------------------------


async def _streams_ctx(app: web.Application) -> AsyncIterator[None]:
    app[_STREAMS] = set()
    # The token index, fed by the bucket from now on; a record that does not decode stops
    # start-up, naming its key.
    await app[DEPS].tokens.follow()
    yield
    await _close_streams(app)
    await app[DEPS].tokens.close()


async def _close_streams(app: web.Application) -> None:
    streams: set[Subscription] = app[_STREAMS]
    for subscription in list(streams):
        subscription.close()  # open streams end now, so shutdown does not wait for them


def create_app(settings: HubSettings, deps: HttpDeps) -> web.Application:
    """The read API, events and dashboard of one hub (see the module docstring for statuses)."""
    app = web.Application(middlewares=[_edge])
    app[DEPS] = deps
    app[_TITLE] = settings.origin
    app.cleanup_ctx.append(_streams_ctx)
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/", _dashboard)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/api/v1/openapi.json", _openapi)
    app.router.add_get("/api/v1/whoami", _whoami)
    app.router.add_get("/api/v1/status", _status)
    app.router.add_get("/api/v1/cases/{case_id}/trail", _trail)
    app.router.add_get("/api/v1/cases/{case_id}/copies", _copies)
    app.router.add_get("/api/v1/review", _review)
    app.router.add_get("/api/v1/stats", _stats)
    app.router.add_get("/api/v1/directory", _directory)
    app.router.add_get("/api/v1/ledger", _ledger)
    app.router.add_get("/api/v1/checkpoint", _checkpoint)
    app.router.add_get("/api/v1/events", _events)
    return app


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A running API: where it listens, and how to stop it (streams first, then connections)."""

    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, host: str, port: int) -> HttpServer:
    """Listen on ``host:port`` (port 0: a free one) until :meth:`HttpServer.stop`."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        raise UnavailableError(f"--http-port: cannot listen on {host}:{port}: {e}") from e
    bound = int(runner.addresses[0][1])
    shown = f"[{host}]" if ":" in host else host
    _log.info("http_listening", host=host, port=bound)
    return HttpServer(runner, f"http://{shown}:{bound}")
