"""A CSMS server as one node of a cluster: the glue between an engine (``ClusterEngine``)
and the server's sessions, reached through a seam (``ServerSeam``; asyncio's is in
``asyncio_seam.py``).

When a station connects, the node claims it before the station's first message is read and
puts the state its previous owner left into the new core; while the station stays, the node
answers calls routed to it on the station's session, publishes the station's messages as
events, and stores the station's state when it changes; when a newer claim takes the
station, the node closes its connection. Its lease is renewed in the background; a node
that cannot renew in time drops every station (they reconnect and are claimed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.errors import (
    CallFailedError,
    CallLostError,
    CallTimedOutError,
    InvalidResponseError,
    LocalProtocolError,
    OcppCallError,
    SchemaViolation,
)
from ocpp_sansio.events import Event, RequestReceived
from ocpp_sansio.frames import make_converter, registry

from .base import (
    CONNECTED,
    DISCONNECTED,
    Claim,
    ClusterEngine,
    ClusterError,
    ClusterUnavailable,
    Fenced,
    LeaseLost,
    RoutedCall,
    RoutedCallFailed,
    StationEvent,
    StationNotConnected,
    station_key,
)
from .state import restore, snapshot

log = logging.getLogger("ocpp_sansio.adapters.cluster")

#: The close code and reason prefix for a connection a newer claim took over.
FENCED_CODE = 1000
#: The close code when the node cannot claim the station (engine unreachable).
TRY_AGAIN_LATER = 1013

_converters: dict[str, Any] = {}


def converter(version: str) -> Any:
    """The message converter of ``version`` (JSON payload <-> typed message)."""
    found = _converters.get(version)
    if found is None:
        found = _converters[version] = make_converter(version)
    return found


class ServerSeam(Protocol):
    """What a node needs from its adapter's server. ``link`` is the adapter's object for
    one station connection (opaque to the node)."""

    def install(self, node: ClusterNode) -> None:
        """Route new station connections through ``node.admit`` (before their first
        message is read) and ``node.attached`` (once the session talks over them), new
        cores through ``node.prepare`` and ``node.tap``, and closed connections to
        ``node.link_closed``."""
        ...

    def forget_session(self, identity: str) -> None:
        """Drop the server's session of ``identity``: its next connection gets a new core."""
        ...

    def session_of(self, link: Any) -> tuple[CsmsCore, Sequence[Any]] | None:
        """The core and the flows of the session ``link`` is attached to (None: none)."""
        ...

    async def call(self, link: Any, request: Any) -> Any:
        """``session.call(request)`` on the session ``link`` is the current connection of;
        CallLostError when it no longer is."""
        ...

    def version(self, link: Any) -> str | None:
        """The OCPP version of the session on ``link``, None when it has none yet."""
        ...

    def close(self, link: Any, code: int, reason: str) -> None:
        """Close that one connection in order."""
        ...


@attrs.define(eq=False)
class _Held:
    claim: Claim
    link: Any
    #: The state to put into the station's next new core (from the previous owner).
    state: dict[str, Any] | None
    core: CsmsCore | None = None
    flows: Sequence[Any] = ()
    saved: dict[str, Any] | None = None
    #: The identity as this connection spelled it (for its connection events).
    identity: str = ""


class _Tap:
    """A flow first in line on every core: passes each station request on as an event,
    keeps nothing."""

    def __init__(self, node: ClusterNode, core: CsmsCore) -> None:
        self.node = node
        self.core = core

    def handle_event(self, event: Event, now: float) -> bool:
        if type(event) is RequestReceived:
            self.node._station_message(self.core, event)
        return False


#: A close code for a node that leaves the cluster (its stations go to another node).
GOING_AWAY = 1001


class ClusterNode:
    """Make ``server`` (through ``seam``) a node of the cluster ``engine``::

        async with serve(handler, options=ServerOptions(flows=...)) as server:
            async with ClusterNode(engine, AsyncioSeam(server)):
                await server.serve_forever()

    The lease is renewed every third of the engine's ``lease_time``; ``save_delay``: how
    long state changes are gathered before they are stored; ``max_pending_events``: events
    kept for publishing while the engine is unreachable.
    """

    def __init__(
        self,
        engine: ClusterEngine,
        seam: ServerSeam,
        *,
        save_delay: float = 0.02,
        max_pending_events: int = 100_000,
        publish_concurrency: int = 64,
    ) -> None:
        self.engine = engine
        self.seam = seam
        self.lease_time = engine.lease_time
        self.renew_every = engine.lease_time / 3
        self.save_delay = save_delay
        self.max_pending_events = max_pending_events
        self.publish_concurrency = publish_concurrency
        self.held: dict[str, _Held] = {}
        #: The epoch this node last held each station under (its local core is current
        #: when the station's next claim comes right after it).
        self._last_epoch: dict[str, int] = {}
        #: The epoch of each core's current (or last) connection, for its events: a
        #: fenced connection's messages were still answered, so they still count.
        self._epochs: weakref.WeakKeyDictionary[CsmsCore, int] = weakref.WeakKeyDictionary()
        #: The newest epoch of ours each station was fenced at (a notice can overtake
        #: the end of its own claim).
        self._fenced_epochs: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._dirty_signal = asyncio.Event()
        self._events: asyncio.Queue[StationEvent] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Publishes under way (``publish_concurrency`` at most).
        self._publishing: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._installed = False

    # --- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.engine.join(self._run_call, self._fenced)
        if not self._installed:
            self.seam.install(self)
            self._installed = True
        self._loops = [
            asyncio.ensure_future(self._renew_loop()),
            asyncio.ensure_future(self._save_loop()),
            asyncio.ensure_future(self._publish_loop()),
        ]

    async def stop(self) -> None:
        """Release every station (storing its state), close its connection so it comes
        back on another node, and leave the cluster."""
        held, self.held = self.held, {}
        for key, entry in held.items():
            self._connection_event(entry, DISCONNECTED, {"reason": "the node left"})
            await self._release(key, entry)
            self.seam.close(entry.link, GOING_AWAY, "this CSMS node is leaving the cluster")
        await self._flush_events(self.lease_time)
        for task in [*self._loops, *self._tasks, *self._publishing]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, *self._publishing, return_exceptions=True)
        with contextlib.suppress(ClusterError):
            await self.engine.leave()

    async def __aenter__(self) -> ClusterNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- what the seam calls --------------------------------------------------------------

    async def admit(self, identity: str, link: Any) -> None:
        """A connection of ``identity`` opened: claim the station for it. Raises
        ClusterError when the claim failed (the seam then closes the connection)."""
        admission = await self.engine.claim(identity)
        claim = admission.claim
        key = claim.key
        old = self.held.get(key)
        if claim.epoch <= max(self._fenced_epochs.get(key, 0), old.claim.epoch if old else 0):
            # A newer claim came while this one was being made (on another node, or for
            # a newer connection here).
            raise Fenced(f"{identity}: epoch {claim.epoch} was claimed again at once")
        if old is not None and old.link is not link:
            self.seam.close(old.link, FENCED_CODE, "replaced by a new connection")
            self._connection_event(old, DISCONNECTED, {"reason": "replaced"})
        orphaned = admission.orphaned
        if orphaned is not None:
            # Its node died holding it: nobody else will say that connection ended.
            self._connection_event(
                _Held(orphaned, None, None, identity=identity),
                DISCONNECTED,
                {"reason": "its node went away"},
            )
        if self._last_epoch.get(key) != claim.epoch - 1:
            # Another node held the station since this one did: its core here is stale.
            self.seam.forget_session(identity)
            held = _Held(claim, link, admission.state, identity=identity)
        else:
            held = _Held(claim, link, None, saved=admission.state, identity=identity)
        self._last_epoch[key] = claim.epoch
        self.held[key] = held
        log.info("claimed %s (epoch %d)", identity, claim.epoch)

    def prepare(self, core: CsmsCore, flows: Sequence[Any]) -> None:
        """A new core (and its flows) for a station being admitted: put the state its
        previous owner left into it."""
        held = self.held.get(station_key(core.identity))
        if held is None:
            return
        self._epochs[core] = held.claim.epoch
        state, held.state = held.state, None
        if state is not None and restore(state, core, flows):
            held.saved = state

    def attached(self, identity: str, link: Any) -> None:
        """The station's session talks over ``link`` now."""
        held = self.held.get(station_key(identity))
        found = self.seam.session_of(link)
        if held is None or held.link is not link or found is None:
            return
        held.core, held.flows = found
        self._epochs[held.core] = held.claim.epoch
        self._connection_event(held, CONNECTED, {"version": held.core.version})

    def tap(self, core: CsmsCore) -> Any:
        """The flow that passes a core's station requests to the cluster (first in line)."""
        return _Tap(self, core)

    def link_closed(self, identity: str, link: Any) -> None:
        key = station_key(identity)
        held = self.held.get(key)
        if held is not None and held.link is link:
            del self.held[key]
            self._connection_event(held, DISCONNECTED, {"reason": "closed"})
            self._spawn(self._release(key, held))

    # --- what the engine calls ------------------------------------------------------------

    def _fenced(self, claim: Claim) -> None:
        known = self._fenced_epochs.get(claim.key, 0)
        self._fenced_epochs[claim.key] = max(known, claim.epoch)
        held = self.held.get(claim.key)
        if held is None or held.claim.epoch > claim.epoch:
            return  # already gone, or a newer connection here
        del self.held[claim.key]
        self._last_epoch.pop(claim.key, None)
        self._connection_event(held, DISCONNECTED, {"reason": "fenced"})
        log.info("fenced: %s (epoch %d) was claimed again", claim.key, claim.epoch)
        self.seam.close(held.link, FENCED_CODE, "fenced: the station connected again (newer claim)")

    async def _run_call(self, routed: RoutedCall) -> dict[str, Any]:
        held = self.held.get(routed.key)
        if held is None or held.claim.epoch != routed.epoch:
            raise StationNotConnected(f"not connected to node {self.engine.node!r}")
        version = self.seam.version(held.link)
        if version is None:
            raise StationNotConnected("its connection is still being set up")
        if routed.version and routed.version != version:
            raise RoutedCallFailed(
                "bad_request", f"the station speaks OCPP {version}, not {routed.version}"
            )
        spec = converter(version)
        try:
            action = registry(version)[routed.action]
        except KeyError:
            raise RoutedCallFailed(
                "bad_request", f"OCPP {version} has no action {routed.action!r}"
            ) from None
        if action.request is None or action.response is None:
            raise RoutedCallFailed(
                "bad_request", f"{routed.action} is not a call a CSMS sends and waits for"
            )
        try:
            request = spec.structure(routed.payload, action.request)
        except SchemaViolation as error:
            raise RoutedCallFailed("bad_request", f"{routed.action}: {error}") from None
        try:
            async with asyncio.timeout(routed.timeout):
                response = await self.seam.call(held.link, request)
        except OcppCallError as error:
            raise RoutedCallFailed(
                "call_error", error.description, error.error_code, error.details
            ) from None
        except (CallTimedOutError, TimeoutError) as error:
            raise RoutedCallFailed("timeout", str(error) or "no answer in time") from None
        except CallLostError as error:
            raise RoutedCallFailed("connection_lost", str(error)) from None
        except InvalidResponseError as error:
            raise RoutedCallFailed("invalid_answer", str(error)) from None
        except CallFailedError as error:
            raise RoutedCallFailed("connection_lost", str(error)) from None
        except LocalProtocolError as error:
            raise RoutedCallFailed("refused", str(error)) from None
        answer: dict[str, Any] = spec.unstructure(response)
        return answer

    # --- events and state -----------------------------------------------------------------

    def _station_message(self, core: CsmsCore, event: RequestReceived) -> None:
        key = station_key(core.identity)
        epoch = self._epochs.get(core)
        if epoch is None:
            log.error("%s: a message before its claim was known: not published", core.identity)
            return
        held = self.held.get(key)
        if held is not None and held.core is core:
            self._dirty.add(key)
            self._dirty_signal.set()
        self._queue(
            StationEvent(
                identity=core.identity,
                epoch=epoch,
                message_id=event.message_id,
                action=event.action,
                payload=converter(core.version).unstructure(event.request),
                node=self.engine.node,
            )
        )

    def _connection_event(self, held: _Held, kind: str, payload: dict[str, Any]) -> None:
        """A connection of the station under ``held``'s claim began or ended."""
        claim = held.claim
        self._queue(
            StationEvent(
                identity=held.identity or claim.key,
                epoch=claim.epoch,
                message_id="",
                action="",
                payload=payload,
                node=claim.node,
                kind=kind,
            )
        )

    def _queue(self, event: StationEvent) -> None:
        if self._events.qsize() >= self.max_pending_events:
            log.error("event queue full: %s dropped", event.dedup_key)
            return
        self._events.put_nowait(event)

    async def _publish_loop(self) -> None:
        in_flight = self._publishing
        while True:
            event = await self._events.get()
            while len(in_flight) >= self.publish_concurrency:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.ensure_future(self._publish(event))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    async def _flush_events(self, timeout: float) -> None:
        """Give the events still queued (a leaving node's last ones) ``timeout`` seconds
        to be published."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._events.qsize() or self._publishing) and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def _publish(self, event: StationEvent) -> None:
        wait = 0.05
        while True:
            try:
                await self.engine.publish(event)
                return
            except ClusterError as error:
                # Published again under the same key: stored once (at least once).
                log.warning(
                    "event %s not confirmed (%s); again in %.2f s", event.dedup_key, error, wait
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, 2.0)

    async def _save_loop(self) -> None:
        while True:
            await self._dirty_signal.wait()
            await asyncio.sleep(self.save_delay)
            self._dirty_signal.clear()
            dirty, self._dirty = self._dirty, set()
            saves = []
            for key in dirty:
                held = self.held.get(key)
                if held is None or held.core is None:
                    continue
                channel = held.core.channel
                if channel is not None and channel.unanswered:
                    self._dirty.add(key)  # its answer may still change the state
                    self._dirty_signal.set()
                state = snapshot(held.core, held.flows)
                if state != held.saved:
                    saves.append(self._save(key, held, state))
            if saves:
                await asyncio.gather(*saves)

    async def _save(self, key: str, held: _Held, state: dict[str, Any]) -> None:
        try:
            await self.engine.save_state(held.claim, state)
        except Fenced:
            self._fenced(held.claim)
        except ClusterError as error:
            log.warning("state of %s not stored (%s); trying again", key, error)
            self._dirty.add(key)
            self._dirty_signal.set()
        else:
            held.saved = state

    async def _release(self, key: str, held: _Held) -> None:
        state = snapshot(held.core, held.flows) if held.core is not None else held.saved
        try:
            await self.engine.release(held.claim, state or {})
        except ClusterError as error:
            log.warning("could not release %s (%s): its claim ends with the lease", key, error)

    # --- the lease ----------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.engine.renew()
                renewed = loop.time()
                continue
            except LeaseLost as error:
                reason = str(error)
            except ClusterUnavailable as error:
                if loop.time() - renewed < self.lease_time:
                    log.warning("lease not renewed (%s); trying again", error)
                    continue
                reason = f"lease not renewed for {self.lease_time} s: {error}"
            self._drop_all(f"this node lost its cluster lease ({reason})")
            with contextlib.suppress(ClusterError):
                await self.engine.leave()
            while True:
                try:
                    await self.engine.join(self._run_call, self._fenced)
                    renewed = loop.time()
                    break
                except ClusterError as error:
                    log.warning("cannot join the cluster again (%s)", error)
                    await asyncio.sleep(self.renew_every)

    def _drop_all(self, reason: str) -> None:
        """Our claims may belong to others now: close every station connection."""
        log.error("%s: closing %d station connections", reason, len(self.held))
        held, self.held = self.held, {}
        self._last_epoch.clear()
        for entry in held.values():
            self._connection_event(entry, DISCONNECTED, {"reason": "the node lost its lease"})
            self.seam.close(entry.link, TRY_AGAIN_LATER, "the CSMS node lost its cluster lease")
