"""Requests dispatched by class to the application's handlers.

::

    router = Router()

    @router.on(v201.BootNotificationRequest)
    async def boot(session, request: v201.BootNotificationRequest) -> v201.BootNotificationResponse:
        ...

One handler per request class, async or plain; the same router serves every adapter
(``serve(router, ...)``) and the in-memory harness. What the router does for you:

- a request without a handler is answered with the version's NotSupported CALLERROR
  (the action is known, this party does not support it);
- a handler answering with another class than the request's response class (a 1.6
  response to a 2.0.1 request, say) is logged naming both classes and their versions,
  and the request is answered InternalError;
- registering something that is not a request class fails when the module is imported,
  not when the first station sends it.

The flows (``flows=`` of the adapters) see every request first: a request a flow answers
never reaches the router.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Generic, NoReturn, TypeVar, overload

from .errors import OcppCallError
from .frames import VERSIONS, error_codes, registry
from .messages._model import Request, is_message_class
from .messages._registry import ActionSpec

log = logging.getLogger("ocpp_sansio.router")

R = TypeVar("R")
S = TypeVar("S")
Q = TypeVar("Q", bound=Request[Any])
Q_co = TypeVar("Q_co", bound=Request[Any], covariant=True)

#: A handler as the router stores it: ``(session, request) -> response`` or an awaitable.
Handler = Callable[[Any, Any], Any]


@cache
def _specs() -> dict[type, tuple[str, ActionSpec]]:
    """Every request and response class of every version -> (version, action)."""
    out: dict[type, tuple[str, ActionSpec]] = {}
    for version in VERSIONS:
        for spec in registry(version).values():
            out[spec.request] = (version, spec)
            if spec.response is not None:
                out[spec.response] = (version, spec)
    return out


def describe(cls: type) -> str:
    """``v201.BootNotificationResponse (OCPP 2.0.1)`` for a message class, else its name."""
    found = _specs().get(cls)
    if found is None:
        return cls.__name__
    module = cls.__module__.rsplit(".", 1)[-1]
    return f"{module}.{cls.__name__} (OCPP {found[0]})"


class Route(Generic[Q_co]):
    """What ``router.on(RequestClass)`` returns: decorate the handler with it. The type
    checker binds the handler's request and response types to ``RequestClass``'s."""

    def __init__(self, router: Router, request_class: type) -> None:
        self._router = router
        self._request_class = request_class

    @overload
    def __call__(
        self: Route[Request[R]], handler: Callable[[S, Q_co], Awaitable[R]]
    ) -> Callable[[S, Q_co], Awaitable[R]]: ...
    @overload
    def __call__(
        self: Route[Request[R]], handler: Callable[[S, Q_co], R]
    ) -> Callable[[S, Q_co], R]: ...
    def __call__(self, handler: Any) -> Any:
        if not callable(handler):
            raise TypeError(f"@router.on({self._request_class.__name__}) decorates a function")
        self._router._handlers[self._request_class] = handler
        return handler


class Router:
    """The application's request handlers, by request class. Give it to ``serve()`` or
    ``connect(on_request=router.on_request)`` like a handler object."""

    def __init__(self) -> None:
        self._handlers: dict[type, Handler] = {}

    def on(self, request_class: type[Q]) -> Route[Q]:
        """Decorate the handler of ``request_class`` (one per class). Raises TypeError
        for a response class, a 2.1 SEND (never answered: it arrives as a
        ``MessageReceived`` event) or anything that is not a message class, and ValueError
        when the class has a handler already."""
        found = _specs().get(request_class) if isinstance(request_class, type) else None
        if found is None:
            what = request_class.__name__ if isinstance(request_class, type) else request_class
            kind = "message class" if is_message_class(request_class) else "message"
            raise TypeError(
                f"Router.on takes a request class of ocpp_sansio.messages; {what!r} is "
                f"not a request {kind}"
            )
        _, spec = found
        if request_class is not spec.request:
            raise TypeError(
                f"{describe(request_class)} is a response: register its request, "
                f"{describe(spec.request)}"
            )
        if spec.response is None:
            raise TypeError(
                f"{describe(request_class)} is a SEND, never answered: it reaches on_event "
                "as MessageReceived"
            )
        if request_class in self._handlers:
            raise ValueError(f"{describe(request_class)} has a handler already")
        return Route(self, request_class)

    def handled(self, version: str) -> frozenset[str]:
        """The action names of ``version`` ("1.6", "2.0.1", "2.1") this router handles."""
        registry(version)  # an unknown version raises ValueError
        found = (_specs()[cls] for cls in self._handlers)
        return frozenset(spec.name for of_version, spec in found if of_version == version)

    # --- what the adapters call ------------------------------------------------------------

    async def on_request(self, session: Any, request: Any) -> Any:
        """The handler-object entry of the async adapters: the response to ``request``;
        raises OcppCallError for the CALLERROR to answer with."""
        handler, spec = self._route(request)
        response = handler(session, request)
        if inspect.isawaitable(response):
            response = await response
        return self._checked(request, spec, response)

    def on_request_sync(self, session: Any, request: Any) -> Any:
        """The same for the threads adapter, which runs plain functions only: an async
        handler is a programming error there, answered InternalError."""
        handler, spec = self._route(request)
        if inspect.iscoroutinefunction(handler):
            _misuse(f"{handler.__qualname__} is async; the threads adapter runs plain functions")
        response = handler(session, request)
        if inspect.isawaitable(response):
            if inspect.iscoroutine(response):
                response.close()  # never awaited: say so here, not in a warning later
            _misuse(
                f"{handler.__qualname__} returned an awaitable; the threads adapter runs "
                "plain functions"
            )
        return self._checked(request, spec, response)

    def _route(self, request: Any) -> tuple[Handler, ActionSpec]:
        cls = type(request)
        found = _specs().get(cls)
        if found is None:
            raise TypeError(f"{cls.__name__} is not an OCPP request")
        version, spec = found
        handler = self._handlers.get(cls)
        if handler is None:
            raise OcppCallError(
                error_codes(version).not_supported, f"{spec.name} is not supported here"
            )
        return handler, spec

    def _checked(self, request: Any, spec: ActionSpec, response: Any) -> Any:
        expected = spec.response
        if type(response) is expected:
            return response
        assert expected is not None  # (SEND classes are refused by on())
        _misuse(
            f"the handler of {describe(type(request))} answered with "
            f"{describe(type(response))}, not {describe(expected)}"
        )


def _misuse(reason: str) -> NoReturn:
    """A handler broke the router's contract: logged here, once, with what the peer is
    not told; the peer gets InternalError."""
    log.error("%s; answering InternalError", reason)
    raise OcppCallError("InternalError", "the handler gave an invalid answer")
