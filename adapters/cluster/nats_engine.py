"""The cluster engine on NATS with JetStream (``pip install 'ocpp-sansio[cluster]'``).

- Ownership: KV bucket ``<prefix>_owners``, one key per station holding its owner (node,
  lease, epoch) and its state. Every write is a compare-and-set on the key's revision, so
  two claims never both win, and the epoch read back is always the last one plus one.
- Liveness: KV bucket ``<prefix>_leases`` whose entries expire ``lease_ttl`` seconds after
  their last write; a node renews its one lease (compare-and-set again, so a lease that
  expired stays dead), and all its claims live and die with it.
- Routing: request-reply to ``<prefix>.node.<lease>.call``; the caller probes
  ``<prefix>.node.<lease>.ping`` while it waits: the server answers "no responders" as
  soon as the node's connection is gone, so a dead owner fails the call within a probe.
- Events: stream ``<prefix>_events`` on ``<prefix>.events.<station>``, each published with
  ``Nats-Msg-Id`` = its de-duplication key; durable pull consumers redeliver what is not
  acknowledged within ``ack_wait``.
- Sequences (``allocate``): KV bucket ``<prefix>_counters``, one key per sequence holding
  its last reserved number, moved on by compare-and-set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from ocpp_sansio.errors import needs_extra

from .base import (
    Admission,
    CallRunner,
    Claim,
    ClusterUnavailable,
    Delivery,
    Fenced,
    FenceListener,
    LeaseLost,
    OwnerLost,
    RoutedCall,
    RoutedCallFailed,
    StationEvent,
    StationNotConnected,
    station_key,
)

with needs_extra("cluster", needed_by="ocpp_sansio.adapters.cluster.nats_engine"):
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerConfig, KeyValueConfig, StorageType, StreamConfig
    from nats.js.kv import KeyValue

log = logging.getLogger("ocpp_sansio.adapters.cluster")

#: How many times a compare-and-set write is tried again after losing a race.
_CAS_ATTEMPTS = 20
#: How long the engine's own requests (KV reads and writes, publishes) may take.
_REQUEST_TIMEOUT = 5.0


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _NatsDelivery:
    def __init__(self, msg: Msg, event: StationEvent) -> None:
        self.event = event
        self._msg = msg

    async def ack(self) -> None:
        await self._msg.ack()


class NatsEngine:
    """One process's handle on a NATS JetStream cluster engine (see ``ClusterEngine``).
    Make it with ``await NatsEngine.connect(url, node=...)``."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        owners: KeyValue,
        leases: KeyValue,
        counters: KeyValue,
        *,
        node: str,
        prefix: str,
        lease_time: float,
        ack_wait: float,
        probe_interval: float,
    ) -> None:
        self.node = node
        self.prefix = prefix
        self.lease_time = lease_time
        self.ack_wait = ack_wait
        self.probe_interval = probe_interval
        self.lease: str | None = None
        self._nc = nc
        self._js = js
        self._owners = owners
        self._leases = leases
        self._counters = counters
        self._lease_revision = 0
        #: Where calls went last: key -> owner record (read again when it proves stale).
        self._routes: dict[str, dict[str, Any]] = {}
        #: Our claims' last known revision: key -> (epoch, revision).
        self._revisions: dict[str, tuple[int, int]] = {}
        self._subscriptions: list[Any] = []
        self._pulls: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        node: str = "",
        prefix: str = "ocpp",
        lease_ttl: float = 5.0,
        ack_wait: float = 30.0,
        probe_interval: float = 0.5,
        events_max_age: float = 7 * 24 * 3600.0,
    ) -> NatsEngine:
        """Connect to ``url`` (``nats://host:port``) and make the buckets and the stream
        if they do not exist yet (every process of a cluster must use the same
        ``prefix``; the lease time is the one of the cluster's first process, which made
        the lease bucket)."""
        nc = Client()
        refused: list[Exception] = []

        async def on_error(error: Exception) -> None:
            # Before the first connection: kept for the one error below. After: one line
            # each (nats-py tries again by itself).
            if nc.is_connected or nc.stats["reconnects"]:
                log.warning("nats: %s", error or type(error).__name__)
            else:
                refused[:] = [error]

        try:
            # Once connected it reconnects for ever; the first connection is bounded.
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                await nc.connect(
                    url,
                    connect_timeout=int(_REQUEST_TIMEOUT),
                    max_reconnect_attempts=-1,
                    name=node or None,
                    error_cb=on_error,
                )
        except (Exception, TimeoutError) as error:
            with contextlib.suppress(Exception):
                await nc.close()
            if not isinstance(error, TimeoutError):
                reason = repr(error)
            elif refused:
                reason = f"{refused[0]} (tried for {_REQUEST_TIMEOUT:g} s)"
            else:
                reason = f"no answer in {_REQUEST_TIMEOUT:g} s"
            raise ClusterUnavailable(f"cannot connect to {url}: {reason}") from error
        js = nc.jetstream(timeout=_REQUEST_TIMEOUT)
        owners = await _bucket(js, KeyValueConfig(bucket=f"{prefix}_owners", history=1))
        leases = await _bucket(
            js, KeyValueConfig(bucket=f"{prefix}_leases", history=1, ttl=lease_ttl)
        )
        counters = await _bucket(js, KeyValueConfig(bucket=f"{prefix}_counters", history=1))
        stream = StreamConfig(
            name=f"{prefix}_events",
            subjects=[f"{prefix}.events.>"],
            storage=StorageType.FILE,
            duplicate_window=120.0,
            max_age=events_max_age,
        )
        try:
            await js.stream_info(stream.name or "")
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(stream)
            except nats.js.errors.BadRequestError:
                await js.stream_info(stream.name or "")  # another process made it meanwhile
        return cls(
            nc,
            js,
            owners,
            leases,
            counters,
            node=node,
            prefix=prefix,
            lease_time=(await leases.status()).ttl or lease_ttl,
            ack_wait=ack_wait,
            probe_interval=probe_interval,
        )

    def _subject(self, lease: str, what: str) -> str:
        return f"{self.prefix}.node.{lease}.{what}"

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- membership -----------------------------------------------------------------------

    async def join(self, run_call: CallRunner, fenced: FenceListener) -> str:
        lease = f"{station_key(self.node) or 'node'}-{uuid.uuid4().hex[:12]}"
        try:
            self._lease_revision = await self._leases.create(lease, self.node.encode())
        except Exception as error:
            raise ClusterUnavailable(f"cannot take a lease: {error!r}") from error

        async def on_call(msg: Msg) -> None:
            self._spawn(self._answer(msg, run_call))

        async def on_fence(msg: Msg) -> None:
            data = json.loads(msg.data)
            fenced(Claim(data["key"], self.node, lease, int(data["epoch"])))
            if msg.reply:
                await msg.respond(b"")  # taken: the claim that fenced us goes on

        async def on_ping(msg: Msg) -> None:
            await msg.respond(b"")

        self._subscriptions = [
            await self._nc.subscribe(self._subject(lease, "call"), cb=on_call),
            await self._nc.subscribe(self._subject(lease, "fence"), cb=on_fence),
            await self._nc.subscribe(self._subject(lease, "ping"), cb=on_ping),
        ]
        await self._nc.flush()
        self.lease = lease
        return lease

    async def _answer(self, msg: Msg, run_call: CallRunner) -> None:
        reply: dict[str, Any]
        try:
            data = json.loads(msg.data)
            routed = RoutedCall(
                data["key"],
                int(data["epoch"]),
                data["version"],
                data["action"],
                data["payload"],
                float(data["timeout"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            reply = {"error": {"kind": "bad_request", "description": f"not a call: {error!r}"}}
        else:
            reply = await _run(run_call, routed)
        # (when the caller is gone, its connection closed, nobody waits for this)
        with contextlib.suppress(Exception):
            await msg.respond(_dumps(reply))

    async def renew(self) -> None:
        if self.lease is None:
            raise LeaseLost(f"node {self.node!r} has not joined")
        try:
            self._lease_revision = await self._leases.update(
                self.lease, self.node.encode(), last=self._lease_revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            raise LeaseLost(f"node {self.node!r}: lease {self.lease} expired") from None
        except Exception as error:
            raise ClusterUnavailable(f"cannot renew the lease: {error!r}") from error

    async def leave(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []
        lease, self.lease = self.lease, None
        if lease is not None:
            with contextlib.suppress(Exception):  # (it expires on its own)
                await self._leases.purge(lease)
        for task in list(self._tasks):
            task.cancel()

    # --- ownership -------------------------------------------------------------------------

    async def _read(self, key: str) -> tuple[dict[str, Any] | None, int]:
        try:
            entry = await self._owners.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None, 0
        except Exception as error:
            raise ClusterUnavailable(f"cannot read {key}: {error!r}") from error
        assert entry.value is not None and entry.revision is not None
        record: dict[str, Any] = json.loads(entry.value)
        return record, entry.revision

    async def _write(self, key: str, record: dict[str, Any], last: int) -> int | None:
        """Compare-and-set; None when ``last`` is no longer the key's revision."""
        try:
            if last:
                return await self._owners.update(key, _dumps(record), last=last)
            return await self._owners.create(key, _dumps(record))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except Exception as error:
            raise ClusterUnavailable(f"cannot write {key}: {error!r}") from error

    async def _lease_alive(self, lease: str) -> bool:
        try:
            await self._leases.get(lease)
        except nats.js.errors.KeyNotFoundError:
            return False
        except Exception as error:
            raise ClusterUnavailable(f"cannot read lease {lease}: {error!r}") from error
        return True

    async def claim(self, identity: str) -> Admission:
        lease = self.lease
        if lease is None:
            raise LeaseLost(f"node {self.node!r} has not joined")
        key = station_key(identity)
        for _ in range(_CAS_ATTEMPTS):
            previous, revision = await self._read(key)
            epoch = (int(previous["epoch"]) if previous else 0) + 1
            state = previous["state"] if previous else None
            record = {"node": self.node, "lease": lease, "epoch": epoch, "state": state}
            written = await self._write(key, record, revision)
            if written is None:
                continue  # another claim won the race: read again and claim after it
            self._revisions[key] = (epoch, written)
            replaced = orphaned = None
            if previous and not previous.get("released"):
                old = Claim(key, previous["node"], previous["lease"], int(previous["epoch"]))
                if old.lease == lease:
                    replaced = old  # this node's own: it closes the old connection itself
                elif await self._fence(old):
                    replaced = old
                else:
                    orphaned = old
            return Admission(Claim(key, self.node, lease, epoch), state, replaced, orphaned)
        raise ClusterUnavailable(f"{identity!r}: too many concurrent claims")

    async def _fence(self, old: Claim) -> bool:
        """Tell the holder of ``old`` it is fenced and wait (one probe interval at most)
        until it took the notice: from then on it refuses calls for the station, so none
        runs on the old connection once the new one is admitted. True when the holder was
        alive (it answered, or its lease still lives)."""
        body = _dumps({"key": old.key, "epoch": old.epoch})
        try:
            await self._nc.request(
                self._subject(old.lease, "fence"), body, timeout=self.probe_interval
            )
            return True
        except nats.errors.NoRespondersError:
            return False  # its node is gone
        except (nats.errors.TimeoutError, TimeoutError):
            log.warning("node %r did not take the fence notice for %s in time", old.node, old.key)
        except Exception as error:
            raise ClusterUnavailable(f"cannot fence {old.key}: {error!r}") from error
        return await self._lease_alive(old.lease)

    async def _update_own(self, claim: Claim, state: dict[str, Any], released: bool) -> None:
        record = {
            "node": claim.node,
            "lease": claim.lease,
            "epoch": claim.epoch,
            "state": state,
            "released": released,
        }
        known = self._revisions.get(claim.key)
        if known is not None and known[0] == claim.epoch:
            written = await self._write(claim.key, record, known[1])
            if written is not None:
                self._revisions[claim.key] = (claim.epoch, written)
                return
        for _ in range(_CAS_ATTEMPTS):
            current, revision = await self._read(claim.key)
            if (
                current is None
                or int(current["epoch"]) != claim.epoch
                or current["lease"] != claim.lease
            ):
                self._revisions.pop(claim.key, None)
                raise Fenced(f"{claim.key}: epoch {claim.epoch} is no longer the current claim")
            written = await self._write(claim.key, record, revision)
            if written is not None:
                self._revisions[claim.key] = (claim.epoch, written)
                return
        raise ClusterUnavailable(f"{claim.key}: too many concurrent writes")

    async def save_state(self, claim: Claim, state: dict[str, Any]) -> None:
        await self._update_own(claim, state, released=False)

    async def release(self, claim: Claim, state: dict[str, Any]) -> None:
        try:
            await self._update_own(claim, state, released=True)
        except Fenced:
            return
        self._revisions.pop(claim.key, None)

    async def owner(self, identity: str) -> Claim | None:
        key = station_key(identity)
        record, _ = await self._read(key)
        if record is None or record.get("released") or not await self._lease_alive(record["lease"]):
            return None
        return Claim(key, record["node"], record["lease"], int(record["epoch"]))

    # --- routing ---------------------------------------------------------------------------

    async def call(
        self, identity: str, version: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        key = station_key(identity)
        record = self._routes.get(key)
        fresh = record is None
        while True:
            if record is None:
                record, _ = await self._read(key)
                fresh = True
                if record is None or record.get("released"):
                    self._routes.pop(key, None)
                    raise StationNotConnected(f"station {identity!r} is not connected to any node")
                self._routes[key] = record
            reply = await self._route(identity, key, record, version, action, payload, timeout)
            if "ok" in reply:
                answer: dict[str, Any] = reply["ok"]
                return answer
            if "not_here" in reply:
                # Not run on the station (not held there, or nobody listens there): safe
                # to try once more, where the station is now.
                self._routes.pop(key, None)
                if fresh:
                    raise StationNotConnected(f"station {identity!r}: {reply['not_here']}")
                record = None
                continue
            error = reply.get("error") or {}
            raise RoutedCallFailed(
                str(error.get("kind", "bad_request")),
                str(error.get("description", "")),
                str(error.get("error_code", "")),
                error.get("details") or {},
            )

    async def _route(
        self,
        identity: str,
        key: str,
        record: dict[str, Any],
        version: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        lease = record["lease"]
        body = _dumps(
            {
                "key": key,
                "epoch": record["epoch"],
                "version": version,
                "action": action,
                "payload": payload,
                "timeout": timeout,
            }
        )
        request = asyncio.ensure_future(
            self._nc.request(self._subject(lease, "call"), body, timeout=timeout)
        )
        try:
            while True:
                done, _ = await asyncio.wait({request}, timeout=self.probe_interval)
                if done:
                    break
                if not await self._owner_answers(lease):
                    raise OwnerLost(
                        f"node {record['node']!r} holding {identity!r} went away before it"
                        " answered; the call is not sent again"
                    )
            try:
                msg = request.result()
            except nats.errors.NoRespondersError:
                return {"not_here": f"its node {record['node']!r} is gone"}
            except (nats.errors.TimeoutError, TimeoutError):
                raise RoutedCallFailed(
                    "timeout", f"node {record['node']!r} did not answer within {timeout} s"
                ) from None
            reply: dict[str, Any] = json.loads(msg.data)
            return reply
        finally:
            if not request.done():
                request.cancel()

    async def _owner_answers(self, lease: str) -> bool:
        """False only when the server says nobody listens on the node's subject any more
        (a slow answer to the probe is not a death)."""
        try:
            await self._nc.request(self._subject(lease, "ping"), b"", timeout=self.probe_interval)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, TimeoutError):
            return True
        return True

    # --- events ----------------------------------------------------------------------------

    async def publish(self, event: StationEvent) -> None:
        key, epoch, kind, message_id = event.dedup_key
        try:
            await self._js.publish(
                f"{self.prefix}.events.{key}",
                _dumps(event.to_json()),
                headers={"Nats-Msg-Id": f"{key}/{epoch}/{kind}/{message_id}"},
            )
        except Exception as error:
            raise ClusterUnavailable(f"event not confirmed: {error!r}") from error

    async def allocate(self, name: str, count: int) -> int:
        key = station_key(name)
        for _ in range(_CAS_ATTEMPTS):
            try:
                entry = await self._counters.get(key)
            except nats.js.errors.KeyNotFoundError:
                last, revision = 0, 0
            except Exception as error:
                raise ClusterUnavailable(f"cannot read sequence {name!r}: {error!r}") from error
            else:
                assert entry.value is not None and entry.revision is not None
                last, revision = int(entry.value), entry.revision
            value = str(last + count).encode()
            try:
                if revision:
                    await self._counters.update(key, value, last=revision)
                else:
                    await self._counters.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another process moved it on first: read again
            except Exception as error:
                raise ClusterUnavailable(f"cannot move sequence {name!r}: {error!r}") from error
            return last + 1
        raise ClusterUnavailable(f"sequence {name!r}: too many concurrent reservations")

    async def fetch(self, consumer: str, batch: int, timeout: float) -> list[Delivery]:
        name = station_key(consumer)
        pull = self._pulls.get(name)
        if pull is None:
            try:
                pull = await self._js.pull_subscribe(
                    f"{self.prefix}.events.>",
                    durable=name,
                    stream=f"{self.prefix}_events",
                    config=ConsumerConfig(ack_wait=self.ack_wait),
                )
            except Exception as error:
                raise ClusterUnavailable(f"cannot open consumer {name}: {error!r}") from error
            self._pulls[name] = pull
        try:
            msgs = await pull.fetch(batch, timeout=timeout)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except Exception as error:
            raise ClusterUnavailable(f"cannot fetch events: {error!r}") from error
        return [_NatsDelivery(msg, StationEvent.from_json(json.loads(msg.data))) for msg in msgs]

    async def close(self) -> None:
        await self.leave()
        for pull in self._pulls.values():
            with contextlib.suppress(Exception):
                await pull.unsubscribe()
        self._pulls.clear()
        try:
            await self._nc.drain()
        except Exception:
            await self._nc.close()


async def _run(run_call: CallRunner, routed: RoutedCall) -> dict[str, Any]:
    """The reply to a routed call: its answer, "not here", or how it failed."""
    try:
        return {"ok": await run_call(routed)}
    except (StationNotConnected, Fenced) as error:
        return {"not_here": str(error)}
    except RoutedCallFailed as error:
        return {
            "error": {
                "kind": error.kind,
                "description": error.description,
                "error_code": error.error_code,
                "details": error.details,
            }
        }
    except Exception as error:
        log.exception("a routed %s failed on this node", routed.action)
        return {"error": {"kind": "node_error", "description": repr(error)}}


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(config)
    except Exception:
        return await js.key_value(config.bucket)  # another process made it meanwhile
