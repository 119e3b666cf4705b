"""The CSMS servers' fast paths (docs/performance.md): the trio server writes from whatever
task produced a frame and falls back to a writer task when the socket is full; the asyncio
server reads into a shared buffer and starts request handlers inline.

A raw WebSocket station on a blocking socket, run in a thread, so the server under test
is the only adapter code involved. Every wait is bounded.
"""

from __future__ import annotations

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
