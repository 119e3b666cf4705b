"""The CSMS servers' fast paths (docs/performance.md): the trio server writes from whatever
task produced a frame and falls back to a writer task when the socket is full; the asyncio
server reads into a shared buffer and starts request handlers inline.

A raw WebSocket station on a blocking socket, run in a thread, so the server under test
is the only adapter code involved. Every wait is bounded.
"""

from __future__ import annotations

import contextvars
import json
import socket
from typing import Any

import anyio
import pytest
import wsproto
import wsproto.events as wse
from _adapterkit import QUIET

from ocpp_sansio.adapters import asyncio as asyncio_adapter
from ocpp_sansio.adapters import trio as trio_adapter
from ocpp_sansio.messages import v16

pytestmark = pytest.mark.anyio

SERVERS = {"trio": trio_adapter, "asyncio": asyncio_adapter}
BIG = 5_000_000  # characters: more than the kernel buffers take before the server must wait


@pytest.fixture(params=list(SERVERS))
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def adapter(backend: str) -> Any:
    return SERVERS[backend]


class RawStation:
    """A station made of a socket and wsproto; it reads only when asked to."""

    def __init__(self, port: int, identity: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # A small receive buffer, so the server's big answer fills the socket.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.texts: list[str] = []
        self.parts: list[str] = []
        self.sock.sendall(
            self.ws.send(
                wse.Request(host="x", target=f"/ocpp/{identity}", subprotocols=["ocpp1.6"])
            )
        )
        while not self._receive(lambda event: isinstance(event, wse.AcceptConnection)):
            pass

    def send(self, frame: list[Any]) -> None:
        self.sock.sendall(self.ws.send(wse.TextMessage(data=json.dumps(frame))))

    def next_text(self) -> list[Any]:
        while not self.texts:
            self._receive(lambda event: False)
        return list(json.loads(self.texts.pop(0)))

    def _receive(self, wanted: Any) -> bool:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        self.ws.receive_data(data)
        found = False
        for event in self.ws.events():
            found = found or wanted(event)
            if isinstance(event, wse.TextMessage):
                self.parts.append(event.data)
                if event.message_finished:
                    self.texts.append("".join(self.parts))
                    self.parts.clear()
        return found

    def close(self) -> None:
        self.sock.close()


class BigAnswers:
    """Accepts boots; answers DataTransfer with ``BIG`` characters of data."""

    async def on_request(self, session: Any, request: Any) -> Any:
        if isinstance(request, v16.BootNotificationRequest):
            return v16.BootNotificationResponse(
                status=v16.RegistrationStatus("Accepted"),
                current_time=_now(),
                interval=300,
            )
        if isinstance(request, v16.HeartbeatRequest):
            return v16.HeartbeatResponse(current_time=_now())
        assert isinstance(request, v16.DataTransferRequest)
        return v16.DataTransferResponse(status=v16.DataTransferStatus.ACCEPTED, data="x" * BIG)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


async def test_an_answer_bigger_than_the_socket_buffers_arrives_whole_and_in_order(
    anyio_backend: str,
) -> None:
    with anyio.fail_after(30):
        async with adapter(anyio_backend).serve(
            BigAnswers(), versions=["1.6"], ws_options=QUIET
        ) as server:

            def station() -> list[list[Any]]:
                raw = RawStation(server.port, "BIG1")
                try:
                    raw.send(
                        [
                            2,
                            "b",
                            "BootNotification",
                            {"chargePointVendor": "v", "chargePointModel": "m"},
                        ]
                    )
                    answers = [raw.next_text()]
                    # The big answer, then a heartbeat queued behind it while the server
                    # still waits for room in the socket.
                    raw.send([2, "d", "DataTransfer", {"vendorId": "v"}])
                    raw.send([2, "h", "Heartbeat", {}])
                    answers.append(raw.next_text())
                    answers.append(raw.next_text())
                    return answers
                finally:
                    raw.close()

            boot, big, heartbeat = await anyio.to_thread.run_sync(station)
    assert boot[:2] == [3, "b"] and boot[2]["status"] == "Accepted"
    assert big[:2] == [3, "d"] and big[2]["data"] == "x" * BIG
    assert heartbeat[:2] == [3, "h"] and "currentTime" in heartbeat[2]


# --- request handlers started inline (asyncio) or as tasks (trio) -------------------------------

current = contextvars.ContextVar("current", default="unset")


class Probing:
    """Handlers that look at their task and context before and after suspending."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.cancelled = anyio.Event()
        self.started = anyio.Event()

    async def on_request(self, session: Any, request: Any) -> Any:
        if isinstance(request, v16.BootNotificationRequest):
            return v16.BootNotificationResponse(
                status=v16.RegistrationStatus("Accepted"), current_time=_now(), interval=300
            )
        if isinstance(request, v16.HeartbeatRequest):
            # Before any suspension: a cancel scope needs the current task.
            self.seen.append(("context before", current.get()))
            current.set(request.__class__.__name__)
            task = anyio.get_current_task().id
            with anyio.fail_after(5):
                await anyio.sleep(0.01)
            self.seen.append(("same task", anyio.get_current_task().id == task))
            self.seen.append(("context after", current.get()))
            return v16.HeartbeatResponse(current_time=_now())
        assert isinstance(request, v16.DataTransferRequest)
        if request.vendor_id == "fail-later":
            await anyio.sleep(0.01)
            raise ValueError("after suspending")
        self.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.cancelled.set()
        raise AssertionError("not reached")


def boot_frame(message_id: str) -> list[Any]:
    return [2, message_id, "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}]


async def test_a_handler_keeps_its_task_and_context_across_its_first_suspension(
    anyio_backend: str,
) -> None:
    handler = Probing()
    with anyio.fail_after(10):
        async with adapter(anyio_backend).serve(
            handler, versions=["1.6"], ws_options=QUIET
        ) as server:

            def station() -> list[list[Any]]:
                raw = RawStation(server.port, "PROBE")
                try:
                    raw.send(boot_frame("b"))
                    answers = [raw.next_text()]
                    for number in range(2):
                        raw.send([2, f"h{number}", "Heartbeat", {}])
                        answers.append(raw.next_text())
                    return answers
                finally:
                    raw.close()

            answers = await anyio.to_thread.run_sync(station)
    assert [answer[:2] for answer in answers] == [[3, "b"], [3, "h0"], [3, "h1"]]
    # Each handler starts from the connection's context, not the previous handler's.
    assert (
        handler.seen
        == [
            ("context before", "unset"),
            ("same task", True),
            ("context after", "HeartbeatRequest"),
        ]
        * 2
    )


async def test_a_handler_failing_after_it_suspended_gets_an_internal_error(
    anyio_backend: str,
) -> None:
    with anyio.fail_after(10):
        async with adapter(anyio_backend).serve(
            Probing(), versions=["1.6"], ws_options=QUIET
        ) as server:

            def station() -> list[Any]:
                raw = RawStation(server.port, "FAIL")
                try:
                    raw.send(boot_frame("b"))
                    raw.next_text()
                    raw.send([2, "d", "DataTransfer", {"vendorId": "fail-later"}])
                    return raw.next_text()
                finally:
                    raw.close()

            answer = await anyio.to_thread.run_sync(station)
    assert answer[:3] == [4, "d", "InternalError"]


async def test_stopping_the_server_cancels_a_suspended_handler(anyio_backend: str) -> None:
    handler = Probing()
    raw: list[RawStation] = []
    with anyio.fail_after(10):
        async with adapter(anyio_backend).serve(
            handler, versions=["1.6"], ws_options=QUIET
        ) as server:

            def station() -> None:
                raw.append(RawStation(server.port, "HANG"))
                raw[0].send(boot_frame("b"))
                raw[0].next_text()
                raw[0].send([2, "d", "DataTransfer", {"vendorId": "hang"}])

            await anyio.to_thread.run_sync(station)
            await handler.started.wait()
        await handler.cancelled.wait()
    raw[0].close()
