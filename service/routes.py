"""What each route declares, read by the gate: its scope, its template, and the answer to every other path.

A route states the scope it needs where it is defined: ``@app.post("/forecast", dependencies=scoped("read"))``.
The gate (``service/gate.py``) must refuse a request before its body is read, so at start-up it turns the app's
routes into a :class:`RouteTable` (path pattern, methods, scope, template) instead of keeping a second table by
hand. The template also labels the request metrics, one series per endpoint whatever the ids in the path.

BentoML mounts the app so that it only sees paths one of its routes matches; :class:`UnknownRoute`, the app's
last route, matches every other path partially, so an unknown path reaches the app and gets its JSON 404 (and
a known one with the wrong method still gets 405, from the route it belongs to).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPBearer
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from pvcast.keys import Scope as KeyScope

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
BENTOML_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
"""Served by BentoML beside the app; their trailing-slash variants are redirected to them as before."""


class RequiredScope:
    """The marker of a route's scope. As a dependency it does nothing: the gate has checked the key already."""

    def __init__(self, scope: KeyScope) -> None:
        self.scope: KeyScope = scope

    def __call__(self) -> None:
        return None


def scoped(scope: KeyScope) -> list[Any]:
    """The dependencies of a route that needs a key with ``scope`` (the bearer scheme documents it in OpenAPI)."""
    return [Depends(bearer), Depends(RequiredScope(scope))]


def scope_of(route: Any) -> KeyScope | None:
    for dependency in getattr(route, "dependencies", None) or []:
        if isinstance(dependency.dependency, RequiredScope):
            return dependency.dependency.scope
    return None


@dataclass(frozen=True)
class RouteRule:
    template: str  # "/parks/{park_id}"
    pattern: re.Pattern[str]
    methods: frozenset[str]
    scope: KeyScope | None  # None: open (documentation)


@dataclass(frozen=True)
class RouteTable:
    rules: tuple[RouteRule, ...]

    @classmethod
    def of(cls, app: FastAPI) -> RouteTable:
        """Every route of ``app`` (included routers flattened). An API endpoint that declares no scope is a
        programming error, refused here at start-up rather than served without a key."""
        rules = []
        for route in iter_route_contexts(app.routes):
            if route.path is None:
                continue  # the UnknownRoute
            scope = scope_of(route)
            if scope is None and isinstance(route.original_route, APIRoute):
                raise RuntimeError(f"route {sorted(route.methods or ())} {route.path} declares no scope: add scoped()")
            rules.append(RouteRule(route.path, route.path_regex, frozenset(route.methods or ()), scope))
        return cls(tuple(rules))

    def match(self, path: str, method: str) -> RouteRule | None:
        """The route that answers ``method path``; for a known path with another method, the path's first route
        (its scope still applies: the answer is 405 to a key that may use the path, 401/403 otherwise)."""
        on_path = [rule for rule in self.rules if rule.pattern.match(path)]
        return next((rule for rule in on_path if method in rule.methods), on_path[0] if on_path else None)


class UnknownRoute(BaseRoute):
    """Every path no other route matches: a redirect to the same path with(out) its trailing slash where that one
    exists (as Starlette's router would), else 404 through the app's JSON error handler."""

    def matches(self, scope: MutableMapping[str, Any]) -> tuple[Match, dict[str, Any]]:
        return (Match.PARTIAL, {}) if scope["type"] == "http" else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        toggled = {**scope, "path": path[:-1] if path.endswith("/") else path + "/"}
        routes = scope["app"].router.routes
        if path != "/" and (
            toggled["path"] in BENTOML_PATHS
            or any(route is not self and route.matches(toggled)[0] != Match.NONE for route in routes)
        ):
            await RedirectResponse(str(URL(scope=toggled)))(scope, receive, send)
            return
        raise HTTPException(status_code=404)
