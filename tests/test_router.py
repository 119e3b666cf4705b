"""The Router: requests dispatched by class, the answers the contract promises for what no
handler takes or a handler gets wrong, and its use by the adapters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from ocpp_sansio import OcppCallError, Router
from ocpp_sansio.messages import v16, v21, v201
from ocpp_sansio.testing.builders import minimal

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Session:
    """What a handler gets as ``session`` in these tests."""

    identity = "cs001"


def boot_201() -> v201.BootNotificationRequest:
    return minimal(v201.BootNotificationRequest)


def boot_answer_201() -> v201.BootNotificationResponse:
    accepted = v201.RegistrationStatusEnum.ACCEPTED
    return v201.BootNotificationResponse(current_time=NOW, interval=300, status=accepted)


async def test_dispatch_by_request_class_to_async_and_plain_handlers() -> None:
    router = Router()
    seen: list[Any] = []

    @router.on(v201.BootNotificationRequest)
    async def boot(session: Session, request: v201.BootNotificationRequest) -> Any:
        seen.append((session.identity, request))
        return boot_answer_201()

    @router.on(v16.HeartbeatRequest)
    def beat(session: Session, request: v16.HeartbeatRequest) -> v16.HeartbeatResponse:
        return v16.HeartbeatResponse(current_time=NOW)

    request = boot_201()
    assert await router.on_request(Session(), request) == boot_answer_201()
    assert seen == [("cs001", request)]
    answer = await router.on_request(Session(), v16.HeartbeatRequest())
    assert answer == v16.HeartbeatResponse(current_time=NOW)
    # the decorator gives the handler back, still callable on its own
    assert beat(Session(), v16.HeartbeatRequest()) == answer


@pytest.mark.parametrize(
    "request_", [v16.HeartbeatRequest(), v201.HeartbeatRequest(), v21.HeartbeatRequest()]
)
async def test_a_request_without_handler_is_answered_not_supported(request_: Any) -> None:
    router = Router()
    with pytest.raises(OcppCallError) as raised:
        await router.on_request(Session(), request_)
    assert raised.value.error_code == "NotSupported"
    assert "Heartbeat" in raised.value.description
    with pytest.raises(OcppCallError):
        router.on_request_sync(Session(), request_)


def test_handled_lists_the_actions_of_one_version() -> None:
    router = Router()

    @router.on(v201.BootNotificationRequest)
    async def boot(session: Session, request: v201.BootNotificationRequest) -> Any: ...

    @router.on(v201.HeartbeatRequest)
    async def beat(session: Session, request: v201.HeartbeatRequest) -> Any: ...

    @router.on(v16.HeartbeatRequest)
    async def beat16(session: Session, request: v16.HeartbeatRequest) -> Any: ...

    assert router.handled("2.0.1") == {"BootNotification", "Heartbeat"}
    assert router.handled("1.6") == {"Heartbeat"}
    assert router.handled("2.1") == frozenset()
    with pytest.raises(ValueError, match="unknown OCPP version"):
        router.handled("1.5")


async def test_a_wrong_response_class_is_answered_internal_error_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = Router()

    @router.on(v201.HeartbeatRequest)
    async def beat(session: Session, request: v201.HeartbeatRequest) -> Any:
        return v16.HeartbeatResponse(current_time=NOW)  # the 1.6 class: a classic slip

    with caplog.at_level(logging.ERROR, "ocpp_sansio.router"), pytest.raises(OcppCallError) as e:
        await router.on_request(Session(), v201.HeartbeatRequest())
    assert e.value.error_code == "InternalError"
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "v201.HeartbeatRequest (OCPP 2.0.1)" in message
    assert "v16.HeartbeatResponse (OCPP 1.6)" in message
    assert "v201.HeartbeatResponse (OCPP 2.0.1)" in message


async def test_an_answer_that_is_no_message_is_answered_internal_error() -> None:
    router = Router()

    @router.on(v201.HeartbeatRequest)
    def beat(session: Session, request: v201.HeartbeatRequest) -> Any:
        return None

    with pytest.raises(OcppCallError, match="InternalError"):
        await router.on_request(Session(), v201.HeartbeatRequest())


def test_the_blocking_entry_refuses_async_handlers() -> None:
    router = Router()

    @router.on(v201.HeartbeatRequest)
    async def beat(session: Session, request: v201.HeartbeatRequest) -> Any:
        return v201.HeartbeatResponse(current_time=NOW)

    with pytest.raises(OcppCallError) as raised:
        router.on_request_sync(Session(), v201.HeartbeatRequest())
    assert raised.value.error_code == "InternalError"


def test_the_blocking_entry_runs_plain_handlers() -> None:
    router = Router()

    @router.on(v201.HeartbeatRequest)
    def beat(session: Session, request: v201.HeartbeatRequest) -> v201.HeartbeatResponse:
        return v201.HeartbeatResponse(current_time=NOW)

    answer = router.on_request_sync(Session(), v201.HeartbeatRequest())
    assert answer == v201.HeartbeatResponse(current_time=NOW)


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        (v201.BootNotificationResponse, "is a response: register its request"),
        (v21.NotifyPeriodicEventStream, "is a SEND, never answered"),
        (v201.ChargingStation, "not a request message class"),
        (dict, "not a request message"),
        ("BootNotification", "not a request message"),
    ],
)
def test_registering_anything_but_a_request_class_fails_at_decoration(
    registered: Any, message: str
) -> None:
    router = Router()
    with pytest.raises(TypeError, match=message):
        router.on(registered)


def test_a_second_handler_for_one_class_fails_at_decoration() -> None:
    router = Router()

    @router.on(v201.HeartbeatRequest)
    async def beat(session: Session, request: v201.HeartbeatRequest) -> Any: ...

    with pytest.raises(ValueError, match="has a handler already"):
        router.on(v201.HeartbeatRequest)


# --- on the adapters ------------------------------------------------------------------------


def csms_router(blocking: bool) -> tuple[Router, list[str]]:
    """A 2.0.1 CSMS: boots and heartbeats handled, StatusNotification answered wrongly."""
    router = Router()
    seen: list[str] = []

    def boot(session: Any, request: v201.BootNotificationRequest) -> Any:
        seen.append("BootNotification")
        return boot_answer_201()

    def beat(session: Any, request: v201.HeartbeatRequest) -> Any:
        seen.append("Heartbeat")
        return v201.HeartbeatResponse(current_time=NOW)

    def status(session: Any, request: v201.StatusNotificationRequest) -> Any:
        return v16.StatusNotificationResponse()

    async def boot_async(session: Any, request: v201.BootNotificationRequest) -> Any:
        return boot(session, request)

    async def beat_async(session: Any, request: v201.HeartbeatRequest) -> Any:
        return beat(session, request)

    router.on(v201.BootNotificationRequest)(boot if blocking else boot_async)
    router.on(v201.HeartbeatRequest)(beat if blocking else beat_async)
    router.on(v201.StatusNotificationRequest)(status)
    return router, seen


class AnswersHeartbeats:
    """A CSMS-side flow that takes every Heartbeat before the router could."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def handle_event(self, event: Any, now: float) -> bool:
        from ocpp_sansio import RequestReceived

        if isinstance(event, RequestReceived) and event.action == "Heartbeat":
            answer = v201.HeartbeatResponse(current_time=NOW)
            self.core.send_response(event.message_id, answer, now)
            return True
        return False


@pytest.mark.parametrize(
    ("kit_name", "anyio_backend"), [("trio", "trio"), ("asyncio", "asyncio"), ("threads", "trio")]
)
async def test_the_router_serves_each_adapter(kit_name: str, anyio_backend: str) -> None:
    from _adapterkit import KITS

    kit = KITS[kit_name]
    router, seen = csms_router(kit.blocking)
    async with kit.serve_handler(router, versions=["2.0.1"]) as server:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
        async with kit.connect(url, "2.0.1") as station:
            with anyio.fail_after(10):
                await kit.wait_registered(station)
            answer = await kit.call(station, v201.HeartbeatRequest())
            assert answer == v201.HeartbeatResponse(current_time=NOW)
            with pytest.raises(OcppCallError) as raised:
                await kit.call(station, minimal(v201.AuthorizeRequest))
            assert raised.value.error_code == "NotSupported"
            with pytest.raises(OcppCallError) as raised:
                await kit.call(station, minimal(v201.StatusNotificationRequest, timestamp=NOW))
            assert raised.value.error_code == "InternalError"
    assert seen == ["BootNotification", "Heartbeat"]


async def test_flows_claim_their_requests_before_the_router(anyio_backend: str) -> None:
    from _adapterkit import KITS

    kit = KITS[anyio_backend]
    router, seen = csms_router(blocking=False)
    flows = lambda core: [AnswersHeartbeats(core)]  # noqa: E731
    with anyio.fail_after(10):
        async with kit.serve_handler(router, versions=["2.0.1"], flows=flows) as server:
            url = f"ws://127.0.0.1:{server.port}/ocpp/CS001"
            async with kit.connect(url, "2.0.1") as station:
                await kit.wait_registered(station)
                await kit.call(station, v201.HeartbeatRequest())
    assert seen == ["BootNotification"]  # the flow answered the heartbeat
