"""The flows' state through a store: saved at every commit, given back at the next start.

``StationKeeper`` serves one station's flows, ``CsmsKeeper`` a CSMS's flows for one
station. Each registers with the store so that, at every commit, the state of the flows it
keeps is written in the same transaction as the core's writes: the held messages and the
flows' transactions never disagree after a crash. Small state (availability, a firmware
update, a reset, reservations, uploads, transactions) is a JSON value per flow, rewritten
only when it changed; large state (the authorization cache and local list, configuration
and device-model values) is written entry by entry, by the store objects handed to the flows.

Build the keeper with the store the core was given, and hand each flow its saved state
before anything else happens (docs/store.md shows the order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

from ..flows._base import WallClock, core_time, posix_clock
from ..flows._store import messages_for
from ..flows.authorization import AuthInfo, CacheEntry, InMemoryCache, LocalEntry
from ..flows.availability import Availability, AvailabilitySnapshot, Reset, ResetSnapshot
from ..flows.device_model import ComponentKey, DeviceVariable, InMemoryDeviceModel, VariableKey
from ..flows.firmware import FirmwareFamily, FirmwarePhase, FirmwareSnapshot, FirmwareUpdater
from ..flows.logs import DiagnosticsUploader, LogUploader
from ..flows.reservations import Reservation, Reservations
from ..flows.transactions import (
    CsmsTransaction2,
    CsmsTransaction16,
    CsmsTransactionEvents,
    CsmsTransactions16,
    Transaction2,
    Transaction16,
    TransactionEvents,
    Transactions16,
    Transactions16Snapshot,
    TransactionState,
)
from ..frames import registry as registry_of
from ..messages._codec import structure_fn, unstructure
from ..messages._registry import Registry
from ._api import CsmsCoreStore, Json, StateStore, StationCoreStore, dump

# --- message objects as JSON ------------------------------------------------------------------


def message_json(value: Any) -> Json:
    """A message object (a request, an IdToken, an IdTagInfo …) as JSON: its class name and
    its payload, validated as on the wire."""
    if value is None:
        return None
    return {"class": type(value).__name__, "data": unstructure(value)}


def message_of(version: str, data: Json) -> Any:
    """The message object ``message_json`` wrote, of OCPP ``version``."""
    if data is None:
        return None
    cls = getattr(messages_for(version), data["class"])
    return structure_fn(cls)(data["data"])


def _date(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date_of(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


_UNSEEN = object()


class _Keeper:
    """Savers by key, run before each commit; a value is written only when it changed.
    A key may have a ``state``: a cheap comparable view of what its saver writes; while it
    compares equal to the last one seen, the saver is not run (a commit comes after every
    input, most of which change nothing a keeper keeps)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._savers: dict[str, tuple[Callable[[], Json], Callable[[], Any] | None]] = {}
        self._written: dict[str, str] = {}
        self._states: dict[str, Any] = {}
        store.before_commit(self._save)

    def _keep(
        self, key: str, saver: Callable[[], Json], state: Callable[[], Any] | None = None
    ) -> None:
        self._savers[key] = (saver, state)
        self._written[key] = dump(self.store.load(key))
        self._states[key] = _UNSEEN

    def _save(self) -> None:
        for key, (saver, state) in self._savers.items():
            if state is not None:
                now = state()
                if now == self._states[key]:
                    continue
                self._states[key] = now
            value = saver()
            text = dump(value)
            if self._written.get(key) != text:
                self.store.save(key, value)
                self._written[key] = text


# --- the station ----------------------------------------------------------------------------------


class StationKeeper(_Keeper):
    """One station's flows, kept through its store. ``clock`` maps core time to wall time
    (as the flows' ``clock``): times kept across a restart are kept as wall time, since
    core time starts afresh with each process."""

    def __init__(self, store: StationCoreStore, *, clock: WallClock = posix_clock) -> None:
        super().__init__(store)
        self.station_store = store
        self.version = store.version
        self.clock = clock
        self._registry: Registry = registry_of(self.version)

    # --- availability (G03.FR.08, G04.FR.09; 1.6 §5.2)

    def availability(self) -> AvailabilitySnapshot | None:
        """What the CSMS made Inoperative: pass it as ``Availability(..., restore=)``."""
        saved = self.store.load("flow/availability")
        if saved is None:
            return None
        return AvailabilitySnapshot(inoperative=frozenset((e, c) for e, c in saved))

    def keep_availability(self, flow: Availability) -> None:
        self._keep(
            "flow/availability",
            lambda: sorted(
                ([e, c] for e, c in flow.snapshot().inoperative),
                key=lambda t: (t[0] is not None, t[0] or 0, t[1] is not None, t[1] or 0),
            ),
            flow.snapshot,
        )

    # --- firmware (L01, L02; 1.6 §5.19)

    def firmware(self) -> FirmwareSnapshot | None:
        """An update in progress: pass it as ``FirmwareUpdater(..., resume=)``; its phase
        says whether the restart was the update's (InstallRebooting: boot reason
        FirmwareUpdate)."""
        saved = self.store.load("flow/firmware")
        if saved is None:
            return None
        return FirmwareSnapshot(
            family=FirmwareFamily(saved["family"]),
            signed=saved["signed"],
            request=message_of(self.version, saved["request"]),
            phase=FirmwarePhase(saved["phase"]),
            reported=saved["reported"],
            attempts_made=saved["attempts_made"],
        )

    def keep_firmware(self, flow: FirmwareUpdater) -> None:
        def save() -> Json:
            update = flow.snapshot()
            if update is None:
                return None
            return {
                "family": update.family.value,
                "signed": update.signed,
                "request": message_json(update.request),
                "phase": update.phase.value,
                "reported": update.reported,
                "attempts_made": update.attempts_made,
            }

        self._keep("flow/firmware", save, flow.snapshot)

    # --- reset (B11, B12; 1.6 §5.14)

    def reset(self) -> ResetSnapshot | None:
        """The reset the previous power-up was carrying out (``rebooting``: its kind) or
        had scheduled OnIdle (``pending``): this boot's reason (2.x RemoteReset,
        ScheduledReset). Read it before building the core and ``keep_reset``."""
        saved = self.store.load("flow/reset")
        if saved is None:
            return None
        pending = saved["pending"]
        return ResetSnapshot(
            pending=(pending[0], pending[1]) if pending is not None else None,
            rebooting=saved["rebooting"],
        )

    def keep_reset(self, flow: Reset) -> None:
        """Keep ``flow``'s reset from now on. Nothing is given back: the restart carried
        out the reset that was on its way; ``reset()`` read beforehand names the boot."""

        def save() -> Json:
            snapshot = flow.snapshot()
            if snapshot is None:
                return None
            pending = list(snapshot.pending) if snapshot.pending is not None else None
            return {"pending": pending, "rebooting": snapshot.rebooting}

        self._keep("flow/reset", save, flow.snapshot)

    # --- reservations (H01-H04; 1.6 §5.13)

    def keep_reservations(self, flow: Reservations, now: float) -> None:
        """Give ``flow`` the reservations of the previous power-up (one that expired
        meanwhile ends at its first timer, as Expired), and keep them from now on."""
        for saved in self.store.load("flow/reservations") or []:
            targets = tuple(saved["targets"])
            if not set(targets) <= set(flow.status):
                continue  # (a connector the station no longer has)
            expiry = _date_of(saved["expiry"])
            assert expiry is not None
            token = saved["id_token"]
            reservation = Reservation(
                reservation_id=saved["id"],
                expiry=expiry,
                expires_at=core_time(expiry, now, flow.clock),
                id_token=token if self.version == "1.6" else message_of(self.version, token),
                group=saved["group"],
                target=saved["target"],
                connector_type=saved["connector_type"],
                targets=targets,
            )
            flow.restore(reservation, now)

        def save() -> Json:
            return [
                {
                    "id": r.reservation_id,
                    "expiry": _date(r.expiry),
                    "id_token": r.id_token if self.version == "1.6" else message_json(r.id_token),
                    "group": r.group,
                    "target": r.target,
                    "connector_type": r.connector_type,
                    "targets": list(r.targets),
                }
                for r in sorted(flow.reservations.values(), key=lambda r: r.reservation_id)
            ]

        def state() -> Any:
            return [attrs.astuple(r, recurse=False) for r in flow.reservations.values()]

        self._keep("flow/reservations", save, state)

    # --- log and diagnostics uploads (N01; 1.6 §5.9)

    def keep_uploads(self, flow: LogUploader | DiagnosticsUploader, now: float) -> None:
        """Give ``flow`` (a LogUploader or DiagnosticsUploader) the upload the previous
        power-up had not finished (due again at once, its attempts counted), and keep it
        from now on."""
        key = f"flow/{flow.kind.value}-upload"
        saved = self.store.load(key)
        if saved is not None:
            request = message_of(self.version, saved["request"])
            flow.resume(request, saved["filename"], saved["attempts_made"], now)

        def save() -> Json:
            upload = flow.snapshot()
            if upload is None:
                return None
            request, filename, attempts_made = upload
            return {
                "request": message_json(request),
                "filename": filename,
                "attempts_made": attempts_made,
            }

        self._keep(key, save, flow.snapshot)

    # --- transactions (E01-E17; 1.6 §4.8, §4.10)

    def keep_transactions(self, flow: Transactions16 | TransactionEvents, now: float) -> list[Any]:
        """Give ``flow`` the transactions of the previous power-up (build the core with this
        store first: the flow follows the messages it took back) and keep them from now
        on. Returns the transactions that were running when the previous power-up ended:
        end them as docs/store.md says (PowerLoss), or in 2.1 resume them (E17)."""
        saved = self.store.load("flow/transactions")
        if isinstance(flow, Transactions16):
            snapshot = Transactions16Snapshot(
                transactions=tuple(self._transaction16(t) for t in (saved or {}).get("tx", [])),
                starts=(saved or {}).get("starts", {}),
            )
            interrupted: list[Any] = list(flow.restore(snapshot, now))
            self._keep("flow/transactions", lambda: self._save16(flow), lambda: _state16(flow))
        else:
            running = [self._transaction2(t) for t in saved or []]
            interrupted = list(flow.restore(running, now))
            self._keep(
                "flow/transactions",
                lambda: [self._json2(t) for t in flow.snapshot()],
                lambda: _state2(flow),
            )
        return interrupted

    def _save16(self, flow: Transactions16) -> Json:
        snapshot = flow.snapshot()
        return {
            "tx": [self._json16(tx) for tx in snapshot.transactions],
            "starts": dict(snapshot.starts),
        }

    def _json16(self, tx: Transaction16) -> Json:
        waiting = []
        for action, fields in tx.waiting:
            cls = self._registry[action].request
            placeholder = {"connector_id": tx.connector_id} if action == "MeterValues" else {}
            waiting.append([action, unstructure(cls(transaction_id=0, **placeholder, **fields))])
        return {
            "local_id": tx.local_id,
            "connector_id": tx.connector_id,
            "id_tag": tx.id_tag,
            "state": tx.state.value,
            "transaction_id": tx.transaction_id,
            "id_tag_info": message_json(tx.id_tag_info),
            "waiting": waiting,
        }

    def _transaction16(self, saved: Json) -> Transaction16:
        waiting = []
        for action, payload in saved["waiting"]:
            request = structure_fn(self._registry[action].request)(payload)
            skip = (
                {"transaction_id", "connector_id"}
                if action == "MeterValues"
                else {"transaction_id"}
            )
            fields = {
                name: getattr(request, name)
                for name in _field_names(type(request))
                if name not in skip
            }
            waiting.append((action, fields))
        return Transaction16(
            local_id=saved["local_id"],
            connector_id=saved["connector_id"],
            id_tag=saved["id_tag"],
            state=TransactionState(saved["state"]),
            transaction_id=saved["transaction_id"],
            id_tag_info=message_of("1.6", saved["id_tag_info"]),
            waiting=waiting,
        )

    def _json2(self, tx: Transaction2) -> Json:
        return {
            "id": tx.transaction_id,
            "evse_id": tx.evse_id,
            "connector_id": tx.connector_id,
            "state": tx.state.value,
            "next_seq_no": tx.next_seq_no,
            "id_token": message_json(tx.id_token),
        }

    def _transaction2(self, saved: Json) -> Transaction2:
        return Transaction2(
            transaction_id=saved["id"],
            evse_id=saved["evse_id"],
            connector_id=saved["connector_id"],
            state=TransactionState(saved["state"]),
            next_seq_no=saved["next_seq_no"],
            id_token=message_of(self.version, saved["id_token"]),
        )

    # --- authorization (1.6 §3.5; C10.FR.02, D01.FR.09 …)

    def local_list(self) -> StoredLocalList:
        """The Local Authorization List with its version, kept in the store: pass it as
        ``Authorization(..., local_list=)``."""
        return StoredLocalList(self.store, self.version)

    def cache(self, now: float, *, capacity: int = 1000) -> StoredCache:
        """The Authorization Cache, kept in the store: pass it as ``Authorization(...,
        cache=)``. ``now`` is the core time of this power-up."""
        return StoredCache(self.store, self.version, now=now, clock=self.clock, capacity=capacity)

    # --- configuration (1.6 keys; 2.x device model)

    def configuration(self, defaults: Mapping[str, str]) -> StoredConfiguration:
        """1.6 configuration keys: ``defaults`` with every value changed since on top, kept
        in the store. Pass it as ``Configuration16(core, store)``."""
        return StoredConfiguration(self.store, defaults)

    def device_model(self, variables: Iterable[DeviceVariable]) -> StoredDeviceModel:
        """2.x variables: ``variables`` with every value set since on top, kept in the
        store. Pass it as ``DeviceModel(core, store)``."""
        return StoredDeviceModel(self.store, variables)


def _state16(flow: Transactions16) -> Any:
    snapshot = flow.snapshot()
    return snapshot.starts, [attrs.astuple(tx, recurse=False) for tx in snapshot.transactions]


def _state2(flow: TransactionEvents) -> Any:
    return [attrs.astuple(tx, recurse=False) for tx in flow.snapshot()]


def _field_names(cls: type) -> list[str]:
    return [field.name for field in attrs.fields(cls)]


# --- authorization stores -----------------------------------------------------------------------


def _auth_json(version: str, token: Any, info: AuthInfo) -> dict[str, Json]:
    return {
        "token": token if version == "1.6" else message_json(token),
        "status": info.status,
        "expiry": _date(info.expiry),
        "group": info.group,
        "raw": message_json(info.raw),
    }


def _auth_of(version: str, saved: Json) -> tuple[Any, AuthInfo]:
    token = saved["token"] if version == "1.6" else message_of(version, saved["token"])
    info = AuthInfo(
        status=saved["status"],
        expiry=_date_of(saved["expiry"]),
        group=saved["group"],
        raw=message_of(version, saved["raw"]),
    )
    return token, info


class StoredLocalList:
    """A ``LocalListStore`` whose entries and version live in a store."""

    _PREFIX = "auth/list/"

    def __init__(self, store: StateStore, version: str) -> None:
        self.store = store
        self.version = version
        self._version = int(store.load("auth/list-version") or 0)
        self._entries: dict[str, LocalEntry] = {}
        for key, saved in store.items(self._PREFIX):
            token, info = _auth_of(version, saved)
            self._entries[key.removeprefix(self._PREFIX)] = LocalEntry(token=token, info=info)

    def list_version(self) -> int:
        return self._version

    def get(self, key: str) -> LocalEntry | None:
        return self._entries.get(key)

    def count(self) -> int:
        return len(self._entries)

    def replace(self, version: int, entries: Mapping[str, LocalEntry]) -> None:
        for key in self._entries:
            self.store.save(self._PREFIX + key, None)
        self._entries = {}
        self.apply(version, entries, ())

    def apply(
        self, version: int, upserts: Mapping[str, LocalEntry], removals: Iterable[str]
    ) -> None:
        self._version = version
        self.store.save("auth/list-version", version)
        for key, entry in upserts.items():
            self._entries[key] = entry
            self.store.save(self._PREFIX + key, _auth_json(self.version, entry.token, entry.info))
        for key in removals:
            if self._entries.pop(key, None) is not None:
                self.store.save(self._PREFIX + key, None)


class StoredCache(InMemoryCache):
    """The Authorization Cache (``InMemoryCache``'s policy) with its entries in a store.
    An entry's times are kept as wall time and read back against this power-up's core
    time, so AuthCacheCtrlr.LifeTime counts on across a restart (C10.FR.08). A use moves
    an entry's last use on: the entries looked up are saved again at the next commit when
    their last use changed."""

    _PREFIX = "auth/cache/"

    def __init__(
        self,
        store: StateStore,
        version: str,
        *,
        now: float,
        clock: WallClock = posix_clock,
        capacity: int = 1000,
    ) -> None:
        super().__init__(capacity)
        self.store = store
        self.version = version
        self.clock = clock
        self._now = now
        #: The last use of each entry as saved, and the entries looked up since.
        self._saved_use: dict[str, float] = {}
        self._looked_up: set[str] = set()
        for key, saved in store.items(self._PREFIX):
            token, info = _auth_of(version, saved)
            name = key.removeprefix(self._PREFIX)
            self._entries[name] = CacheEntry(
                token=token,
                info=info,
                stored_at=self._core_time(saved["stored_at"]),
                last_used=self._core_time(saved["last_used"]),
            )
            self._saved_use[name] = self._entries[name].last_used
        store.before_commit(self._save_uses)

    def _core_time(self, wall: float) -> float:
        return self._now + (wall - self.clock(self._now).timestamp())

    def get(self, key: str) -> CacheEntry | None:
        entry = super().get(key)
        if entry is not None:
            self._looked_up.add(key)
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        before = set(self._entries)
        super().put(key, entry)
        for gone in before - set(self._entries):
            self.store.save(self._PREFIX + gone, None)
            self._saved_use.pop(gone, None)
        self._write(key, entry)

    def clear(self) -> None:
        for key in self._entries:
            self.store.save(self._PREFIX + key, None)
        self._saved_use.clear()
        super().clear()

    def _write(self, key: str, entry: CacheEntry) -> None:
        saved = _auth_json(self.version, entry.token, entry.info)
        saved["stored_at"] = self.clock(entry.stored_at).timestamp()
        saved["last_used"] = self.clock(entry.last_used).timestamp()
        self.store.save(self._PREFIX + key, saved)
        self._saved_use[key] = entry.last_used

    def _save_uses(self) -> None:
        looked_up, self._looked_up = self._looked_up, set()
        for key in sorted(looked_up):
            entry = self._entries.get(key)
            if entry is not None and entry.last_used != self._saved_use.get(key):
                self._write(key, entry)


# --- configuration stores -----------------------------------------------------------------------


class StoredConfiguration:
    """A ``ConfigurationStore``: the defaults, and every value written since, kept."""

    def __init__(self, store: StateStore, defaults: Mapping[str, str]) -> None:
        self.store = store
        self._changed: dict[str, str] = dict(store.load("configuration") or {})
        self._values = dict(defaults)
        self._values.update((k, v) for k, v in self._changed.items() if k in self._values)

    def read(self, key: str) -> str | None:
        return self._values.get(key)

    def write(self, key: str, value: str) -> None:
        self._values[key] = value
        self._changed[key] = value
        self.store.save("configuration", dict(sorted(self._changed.items())))

    def names(self) -> Iterator[str]:
        return iter(list(self._values))


class StoredDeviceModel(InMemoryDeviceModel):
    """An ``InMemoryDeviceModel`` whose written values are kept: at the next start they
    are applied over the variables given, where the variable and attribute still exist."""

    def __init__(self, store: StateStore, variables: Iterable[DeviceVariable] = ()) -> None:
        super().__init__(variables)
        self.store = store
        self._changed: dict[str, list[Any]] = {}
        for item in store.load("device-model") or []:
            component, variable, attribute, value = item
            found = self.lookup(ComponentKey(*component), VariableKey(*variable))
            if found is not None and attribute in found.attributes:
                found.attributes[attribute].value = value
                self._changed[dump(item[:3])] = item

    def write(
        self, component: ComponentKey, variable: VariableKey, attribute: str, value: str
    ) -> None:
        super().write(component, variable, attribute, value)
        found = self.lookup(component, variable)
        assert found is not None
        item = [
            [
                found.component.name,
                found.component.instance,
                found.component.evse_id,
                found.component.connector_id,
            ],
            [found.variable.name, found.variable.instance],
            attribute,
            value,
        ]
        self._changed[dump(item[:3])] = item
        self.store.save("device-model", [self._changed[k] for k in sorted(self._changed)])


# --- the CSMS -------------------------------------------------------------------------------------


class CsmsKeeper(_Keeper):
    """A CSMS's flows for one station, kept through that station's store (the one its
    ``CsmsCore`` was given): the open transactions, and the 1.6 transactionId counter."""

    def __init__(self, store: CsmsCoreStore) -> None:
        super().__init__(store)

    def transaction_ids(self) -> Callable[[], int]:
        """1.6 transactionIds that never repeat across restarts of the CSMS: pass it as
        ``CsmsTransactions16(..., transaction_ids=)``."""
        store = self.store

        def next_id() -> int:
            number = int(store.load("csms/last-transaction-id") or 0) + 1
            store.save("csms/last-transaction-id", number)
            return number

        return next_id

    def keep_transactions(self, flow: CsmsTransactions16 | CsmsTransactionEvents) -> None:
        """Give ``flow`` the transactions still open at the previous run, and keep them."""
        saved = self.store.load("csms/transactions") or []
        if isinstance(flow, CsmsTransactions16):
            flow.restore(
                [
                    CsmsTransaction16(
                        transaction_id=t["id"],
                        connector_id=t["connector_id"],
                        id_tag=t["id_tag"],
                        meter_start=t["meter_start"],
                        started=datetime.fromisoformat(t["started"]),
                    )
                    for t in saved
                ]
            )
            self._keep("csms/transactions", lambda: self._open16(flow))
            return
        flow.restore(
            [
                CsmsTransaction2(
                    transaction_id=t["id"],
                    seq_nos={n for first, last in t["seq_nos"] for n in range(first, last + 1)},
                    started_seq_no=t["started"],
                    offline_events=t["offline"],
                )
                for t in saved
            ]
        )
        self._keep("csms/transactions", lambda: self._open2(flow))

    @staticmethod
    def _open16(flow: CsmsTransactions16) -> Json:
        return [
            {
                "id": tx.transaction_id,
                "connector_id": tx.connector_id,
                "id_tag": tx.id_tag,
                "meter_start": tx.meter_start,
                "started": tx.started.isoformat(),
            }
            for tx in flow.open_transactions()
        ]

    @staticmethod
    def _open2(flow: CsmsTransactionEvents) -> Json:
        return [
            {
                "id": tx.transaction_id,
                "seq_nos": _ranges(tx.seq_nos),
                "started": tx.started_seq_no,
                "offline": tx.offline_events,
            }
            for tx in flow.open_transactions()
        ]


def _ranges(numbers: set[int]) -> list[list[int]]:
    """``{0, 1, 2, 5}`` as ``[[0, 2], [5, 5]]``."""
    out: list[list[int]] = []
    for n in sorted(numbers):
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


__all__ = [
    "CsmsKeeper",
    "StationKeeper",
    "StoredCache",
    "StoredConfiguration",
    "StoredDeviceModel",
    "StoredLocalList",
    "message_json",
    "message_of",
]
