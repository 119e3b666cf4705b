"""Checked by mypy from tests/test_typing.py, never run: a line ending in ``# R: TYPE``
must reveal TYPE, a line ending in ``# E: CODE`` must be a mypy error of that code, and
every other line must be clean."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import reveal_type

from ocpp_sansio import Router, SupportsBlockingCall, SupportsCall
from ocpp_sansio.adapters import asgi, threads, trio
from ocpp_sansio.messages import v16, v21, v201

router = Router()
FULL = v201.ReportBaseEnum.FULL_INVENTORY
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@router.on(v201.BootNotificationRequest)
async def boot(
    session: SupportsCall, request: v201.BootNotificationRequest
) -> v201.BootNotificationResponse:
    answer = await session.call(v201.GetBaseReportRequest(request_id=1, report_base=FULL))
    reveal_type(answer)  # R: ocpp_sansio.messages.v201.GetBaseReportResponse
    raise NotImplementedError


@router.on(v16.HeartbeatRequest)
def beat(session: SupportsBlockingCall, request: v16.HeartbeatRequest) -> v16.HeartbeatResponse:
    reveal_type(session.call(v16.ClearCacheRequest()))  # R: ocpp_sansio.messages.v16.ClearCacheResponse
    raise NotImplementedError


# The decorator hands the handler back with its types.
still_typed: Callable[
    [SupportsCall, v201.BootNotificationRequest], Awaitable[v201.BootNotificationResponse]
] = boot


@router.on(v201.HeartbeatRequest)  # E: arg-type
async def answers_with_the_1_6_class(
    session: SupportsCall, request: v201.HeartbeatRequest
) -> v16.HeartbeatResponse:
    raise NotImplementedError


@router.on(v201.HeartbeatRequest)  # E: arg-type
def takes_another_request(
    session: SupportsCall, request: v201.StatusNotificationRequest
) -> v201.HeartbeatResponse:
    raise NotImplementedError


async def expects_the_1_6_answer(session: SupportsCall) -> v16.ClearCacheResponse:
    return await session.call(v201.ClearCacheRequest())  # E: arg-type


async def sends(session: SupportsCall) -> None:
    send = v21.NotifyPeriodicEventStream(id=1, pending=0, basetime=NOW, data=[])
    reveal_type(await session.call(send))  # R: None


# The adapters' own sessions and stations are typed alike.
async def on_trio(session: trio.CsmsSession, station: trio.Station) -> None:
    reveal_type(await session.call(v201.ClearCacheRequest()))  # R: ocpp_sansio.messages.v201.ClearCacheResponse
    reveal_type(await station.call(v16.HeartbeatRequest()))  # R: ocpp_sansio.messages.v16.HeartbeatResponse


async def on_asgi(session: asgi.CsmsSession) -> None:
    reveal_type(await session.call(v16.ClearCacheRequest()))  # R: ocpp_sansio.messages.v16.ClearCacheResponse


def on_threads(session: threads.CsmsSession, station: threads.Station) -> None:
    reveal_type(session.call(v201.ClearCacheRequest(), timeout=5))  # R: ocpp_sansio.messages.v201.ClearCacheResponse
    reveal_type(station.call(v201.HeartbeatRequest()))  # R: ocpp_sansio.messages.v201.HeartbeatResponse
