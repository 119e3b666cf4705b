"""Local authorization: the Local Authorization List (SendLocalList, GetLocalListVersion),
the Authorization Cache (store, expiry, ClearCache) and the lookup order a station follows
online and offline (1.6 §3.5, §5.4, §5.10, §5.15; 2.x C01, C10-C15, D01, D02).

Identifiers compare case-insensitively (1.6 CiString20, 2.x idToken); in 2.x the token
type is part of the identity.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from ..errors import LocalProtocolError
from ..events import (
    CallErrorReceived,
    CallLost,
    CallTimedOut,
    Event,
    InvalidResponse,
    RequestReceived,
    ResponseReceived,
)
from ._base import Emitter, FlowEvent, WallClock, WallClocked
from ._store import NoSettings, Settings, is_online, messages_for, read_bool, read_int

ACCEPTED = "Accepted"


def token_key(version: str, token: Any) -> str:
    """The identity of an idTag (1.6, a string) or IdToken (2.x) for lookups."""
    if version == "1.6":
        return str(token).casefold()
    return f"{str(token.type).casefold()}:{token.id_token.casefold()}"


@attrs.frozen(kw_only=True)
class AuthInfo:
    """What the CSMS or the local list says about an identifier, for any version."""

    status: str
    #: 1.6 expiryDate, 2.x cacheExpiryDateTime.
    expiry: datetime | None = None
    #: 1.6 parentIdTag, 2.x groupIdToken.idToken.
    group: str | None = None
    #: The IdTagInfo / IdTokenInfo it came from.
    raw: Any = None

    @classmethod
    def of(cls, version: str, info: Any) -> AuthInfo:
        if version == "1.6":
            return cls(
                status=str(info.status),
                expiry=info.expiry_date,
                group=info.parent_id_tag,
                raw=info,
            )
        group = info.group_id_token
        return cls(
            status=str(info.status),
            expiry=info.cache_expiry_date_time,
            group=group.id_token if group is not None else None,
            raw=info,
        )


@attrs.frozen(kw_only=True)
class LocalEntry:
    token: Any
    info: AuthInfo


@attrs.define(kw_only=True)
class CacheEntry:
    token: Any
    info: AuthInfo
    stored_at: float
    last_used: float


# --- stores -------------------------------------------------------------------------------


class LocalListStore(Protocol):
    """The Local Authorization List. Changes come only from SendLocalList (D01.FR.09)."""

    def list_version(self) -> int: ...

    def get(self, key: str) -> LocalEntry | None: ...

    def count(self) -> int: ...

    def replace(self, version: int, entries: Mapping[str, LocalEntry]) -> None: ...

    def apply(
        self, version: int, upserts: Mapping[str, LocalEntry], removals: Iterable[str]
    ) -> None: ...


class InMemoryLocalList:
    def __init__(self) -> None:
        self._version = 0
        self._entries: dict[str, LocalEntry] = {}

    def list_version(self) -> int:
        return self._version

    def get(self, key: str) -> LocalEntry | None:
        return self._entries.get(key)

    def count(self) -> int:
        return len(self._entries)

    def replace(self, version: int, entries: Mapping[str, LocalEntry]) -> None:
        self._version = version
        self._entries = dict(entries)

    def apply(
        self, version: int, upserts: Mapping[str, LocalEntry], removals: Iterable[str]
    ) -> None:
        self._version = version
        self._entries.update(upserts)
        for key in removals:
            self._entries.pop(key, None)


class CacheStore(Protocol):
    """The Authorization Cache: the latest IdTagInfo / IdTokenInfo per identifier."""

    def get(self, key: str) -> CacheEntry | None: ...

    def put(self, key: str, entry: CacheEntry) -> None: ...

    def clear(self) -> None: ...


class InMemoryCache:
    """A ``CacheStore`` holding at most ``capacity`` entries. When full, it drops entries
    that are not Accepted first, then the least recently used valid ones (1.6 §3.5.1,
    C10.FR.07)."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._entries: dict[str, CacheEntry] = {}

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def put(self, key: str, entry: CacheEntry) -> None:
        if key not in self._entries and len(self._entries) >= self.capacity:
            victim = min(
                self._entries,
                key=lambda k: (
                    self._entries[k].info.status == ACCEPTED,
                    self._entries[k].last_used,
                ),
            )
            del self._entries[victim]
        self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# --- decisions ----------------------------------------------------------------------------


class Verdict(enum.Enum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    #: Send an Authorize request and go by the CSMS's answer.
    ASK_CSMS = "AskCsms"


class AuthorizationSource(enum.Enum):
    LOCAL_LIST = "LocalList"
    CACHE = "Cache"
    #: Offline, identifier in neither list nor cache (1.6 §3.5.4, C15.FR.08).
    UNKNOWN_OFFLINE = "UnknownOffline"
    CSMS = "Csms"
    #: 2.x AuthCtrlr.Enabled is false: no authorization needed (C01.FR.01).
    AUTHORIZATION_DISABLED = "AuthorizationDisabled"


@attrs.frozen(kw_only=True)
class LocalDecision:
    verdict: Verdict
    source: AuthorizationSource | None
    info: AuthInfo | None = None


@attrs.frozen(kw_only=True)
class AuthorizationDecided(FlowEvent):
    """The outcome of ``Authorization.authorize`` for ``token``, once known."""

    token: Any
    accepted: bool
    source: AuthorizationSource
    info: AuthInfo | None


@attrs.frozen(kw_only=True)
class LocalListUpdated(FlowEvent):
    """SendLocalList was applied: the list now has ``version`` and ``entries`` entries
    (2.x: update LocalAuthListCtrlr.Entries, D01.FR.12)."""

    version: int
    entries: int
    update_type: str


@attrs.frozen(kw_only=True)
class CacheCleared(FlowEvent):
    """ClearCache emptied the Authorization Cache."""


@attrs.frozen(kw_only=True)
class LocalListConflict(FlowEvent):
    """1.6 §3.5.2: the CSMS's answer for an identifier contradicts the Local Authorization
    List. Send a StatusNotification for connector 0 with errorCode LocalListConflict."""

    token: Any
    local: AuthInfo
    csms: AuthInfo


#: Setting names per version: 1.6 key, 2.x Component.Variable.
_SETTINGS = {
    "list_enabled": ("LocalAuthListEnabled", "LocalAuthListCtrlr.Enabled"),
    "cache_enabled": ("AuthorizationCacheEnabled", "AuthCacheCtrlr.Enabled"),
    "preauthorize": ("LocalPreauthorize", "AuthCtrlr.LocalPreAuthorize"),
    "offline": ("LocalAuthorizeOffline", "AuthCtrlr.LocalAuthorizeOffline"),
    "unknown_offline": ("AllowOfflineTxForUnknownId", "AuthCtrlr.OfflineTxForUnknownIdEnabled"),
    "items_per_message": ("SendLocalListMaxLength", "LocalAuthListCtrlr.ItemsPerMessage"),
}


class Authorization(Emitter, WallClocked):
    """The station's local authorization. Feed it the core's events: it answers
    SendLocalList, GetLocalListVersion and ClearCache, keeps the cache up to date from every
    IdTagInfo / IdTokenInfo the CSMS sends, and decides locally per the lookup order.

    ``local_list`` None means the station has no Local Authorization List (1.6 answers
    NotSupported and version -1); ``cache`` None means no Authorization Cache.
    ``max_entries`` caps the list (default: 1.6 LocalAuthListMaxLength; 2.x unlimited).
    """

    def __init__(
        self,
        core: Any,
        *,
        settings: Settings | None = None,
        local_list: LocalListStore | None = None,
        cache: CacheStore | None = None,
        clock: WallClock | None = None,
        max_entries: int | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.version = core.version
        self.settings: Settings = settings or NoSettings()
        self.local_list = local_list
        self.cache = cache
        self._own_clock = clock
        self._max_entries = max_entries
        self._m = messages_for(self.version)
        #: Our Authorize requests waiting for an answer: message id -> token.
        self._asked: dict[str, Any] = {}

    def _name(self, setting: str) -> str:
        v16_name, v2_name = _SETTINGS[setting]
        return v16_name if self.version == "1.6" else v2_name

    def _flag(self, setting: str, default: bool) -> bool:
        return read_bool(self.settings, self._name(setting), default)

    # --- lookups ------------------------------------------------------------------------------

    def lookup(self, token: Any, now: float) -> LocalDecision:
        """What the station may decide on its own about ``token`` right now (1.6 §3.5,
        C10.FR.03, C12-C15): Local List before cache, online vs offline rules."""
        if self.version != "1.6" and not read_bool(self.settings, "AuthCtrlr.Enabled", True):
            return LocalDecision(
                verdict=Verdict.ACCEPTED, source=AuthorizationSource.AUTHORIZATION_DISABLED
            )
        online = is_online(self.core)
        known = self._known(token, now)
        if known is not None:
            return self._decide(*known, online=online)
        if online:
            return LocalDecision(verdict=Verdict.ASK_CSMS, source=None)  # C01.FR.02
        return self._unknown_offline()

    def _known(self, token: Any, now: float) -> tuple[AuthorizationSource, AuthInfo, bool] | None:
        """Where ``token`` is known locally, what is known, and whether it is valid now:
        the Local List has priority over the cache (C13.FR.01, C14.FR.01, 1.6 §3.5.3)."""
        key = token_key(self.version, token)
        if self.local_list is not None and self._flag("list_enabled", False):
            entry = self.local_list.get(key)
            if entry is not None:
                expired = self._list_entry_expired(entry, now)
                valid = entry.info.status == ACCEPTED and not expired
                return AuthorizationSource.LOCAL_LIST, entry.info, valid
        if self.cache is not None and self._flag("cache_enabled", True):
            cached = self.cache.get(key)
            if cached is not None:
                if cached.info.status != ACCEPTED:
                    return AuthorizationSource.CACHE, cached.info, False
                if self._cache_expired(cached, now):
                    # An expired entry counts as Expired (C10.FR.10, 1.6 §3.5.1).
                    return (
                        AuthorizationSource.CACHE,
                        attrs.evolve(cached.info, status="Expired"),
                        False,
                    )
                cached.last_used = now
                return AuthorizationSource.CACHE, cached.info, True
        return None

    def _unknown_offline(self) -> LocalDecision:
        """Offline and known nowhere: accepted only with unknown-offline authorization on
        (1.6 §3.5.4, C15.FR.08)."""
        verdict = Verdict.ACCEPTED if self._flag("unknown_offline", False) else Verdict.REJECTED
        return LocalDecision(verdict=verdict, source=AuthorizationSource.UNKNOWN_OFFLINE)

    def _decide(
        self, source: AuthorizationSource, info: AuthInfo, valid: bool, online: bool
    ) -> LocalDecision:
        if online:
            # Valid and pre-authorization on: start at once (C14.FR.02); anything else is
            # checked with the CSMS (C10.FR.03, C14.FR.03, 1.6 §4.1).
            if valid and self._flag("preauthorize", False):
                return LocalDecision(verdict=Verdict.ACCEPTED, source=source, info=info)
            return LocalDecision(verdict=Verdict.ASK_CSMS, source=source, info=info)
        # Offline: known but not valid is refused (1.6 §3.5.4, C13.FR.02-06).
        if valid and self._flag("offline", True):
            return LocalDecision(verdict=Verdict.ACCEPTED, source=source, info=info)
        return LocalDecision(verdict=Verdict.REJECTED, source=source, info=info)

    def _list_entry_expired(self, entry: LocalEntry, now: float) -> bool:
        """1.6 §3.5.4 rejects an entry expired by the passage of time; 2.x looks at
        cacheExpiryDateTime only with LocalAuthListCtrlr.SupportsExpiryDateTime (C13, C14)."""
        if entry.info.expiry is None:
            return False
        if self.version != "1.6" and not read_bool(
            self.settings, "LocalAuthListCtrlr.SupportsExpiryDateTime", False
        ):
            return False
        return _passed(entry.info.expiry, self.clock(now))

    def _cache_expired(self, entry: CacheEntry, now: float) -> bool:
        """The entry's own expiry (C10.FR.13), else AuthCacheCtrlr.LifeTime since last use
        (C10.FR.08; 1.6 has no lifetime)."""
        if entry.info.expiry is not None:
            return _passed(entry.info.expiry, self.clock(now))
        if self.version == "1.6":
            return False
        lifetime = read_int(self.settings, "AuthCacheCtrlr.LifeTime", 0)
        return lifetime > 0 and now - entry.last_used >= lifetime

    def authorize(self, token: Any, now: float) -> LocalDecision:
        """Decide for ``token``: locally when the rules allow, otherwise by sending an
        Authorize request. Either way an ``AuthorizationDecided`` event follows (at once,
        or when the answer comes; a failed request falls back to the offline order)."""
        decision = self.lookup(token, now)
        if decision.verdict is Verdict.ASK_CSMS:
            request = (
                self._m.AuthorizeRequest(id_tag=token)
                if self.version == "1.6"
                else self._m.AuthorizeRequest(id_token=token)
            )
            self._asked[self.core.send_request(request, now)] = token
        else:
            self._decided(token, decision)
        return decision

    def _decided(self, token: Any, decision: LocalDecision) -> None:
        assert decision.source is not None
        self._emit(
            AuthorizationDecided(
                token=token,
                accepted=decision.verdict is Verdict.ACCEPTED,
                source=decision.source,
                info=decision.info,
            )
        )

    def _offline_decision(self, token: Any, now: float) -> LocalDecision:
        """The offline order, used when the CSMS could not be asked."""
        known = self._known(token, now)
        if known is not None:
            return self._decide(*known, online=False)
        return self._unknown_offline()

    # --- events ---------------------------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        """Answer SendLocalList, GetLocalListVersion, ClearCache; learn from every
        IdTagInfo / IdTokenInfo. True when ``event`` was one of ours."""
        if isinstance(event, RequestReceived):
            return self._on_request(event, now)
        if isinstance(event, ResponseReceived):
            self._learn(event.action, event.request, event.response, now)
            token = self._asked.pop(event.message_id, None)
            if token is not None:
                info = AuthInfo.of(self.version, _response_info(self.version, event.response))
                self._emit(
                    AuthorizationDecided(
                        token=token,
                        accepted=info.status == ACCEPTED,
                        source=AuthorizationSource.CSMS,
                        info=info,
                    )
                )
                return True
            return False
        if isinstance(event, CallErrorReceived | InvalidResponse | CallTimedOut | CallLost):
            token = self._asked.pop(event.message_id, None)
            if token is not None:
                self._decided(token, self._offline_decision(token, now))
                return True
        return False

    def _on_request(self, event: RequestReceived, now: float) -> bool:
        m = self._m
        if event.action == "GetLocalListVersion":
            self.core.send_response(event.message_id, self._version_response(event.request), now)
            return True
        if event.action == "SendLocalList":
            status = self.send_local_list(event.request)
            status_type = m.UpdateStatus if self.version == "1.6" else m.SendLocalListStatusEnum
            self.core.send_response(
                event.message_id, m.SendLocalListResponse(status=status_type(status)), now
            )
            return True
        if event.action == "ClearCache":
            status_type = m.ClearCacheStatus if self.version == "1.6" else m.ClearCacheStatusEnum
            status = "Rejected"  # C11.FR.04: no cache, or disabled
            if self.cache is not None and self._flag("cache_enabled", True):
                self.cache.clear()
                status = "Accepted"  # C11.FR.03
                self._emit(CacheCleared())
            self.core.send_response(
                event.message_id, m.ClearCacheResponse(status=status_type(status)), now
            )
            return True
        return False

    def _version_response(self, request: Any) -> Any:
        m = self._m
        if self.version == "1.6":
            # -1: no Local Authorization List support (1.6 §5.10).
            version = -1 if self.local_list is None else self.local_list.list_version()
            return m.GetLocalListVersionResponse(list_version=version)
        version = 0
        if self.local_list is not None and self._flag("list_enabled", False):
            version = self.local_list.list_version()  # D02.FR.01-03
        return m.GetLocalListVersionResponse(version_number=version)

    def send_local_list(self, request: Any) -> str:
        """Apply a SendLocalList atomically; the status to answer with."""
        if self.local_list is None:
            return "NotSupported" if self.version == "1.6" else "Failed"
        version = request.list_version if self.version == "1.6" else request.version_number
        full = str(request.update_type) == "Full"
        items = list(request.local_authorization_list or ())
        if version < (0 if self.version == "1.6" else 1):
            return "Failed"  # D01.FR.18: versionNumber > 0
        limit = read_int(self.settings, self._name("items_per_message"), 0)
        if limit and len(items) > limit:
            return "Failed"
        if not full and version <= self.local_list.list_version():
            return "VersionMismatch"  # D01.FR.19, 1.6 UpdateStatus
        keys = [token_key(self.version, _item_token(self.version, item)) for item in items]
        if len(set(keys)) != len(keys):
            return "Failed"  # D01.FR.06: identifiers are unique
        upserts: dict[str, LocalEntry] = {}
        removals: list[str] = []
        for key, item in zip(keys, items, strict=True):
            raw = item.id_tag_info if self.version == "1.6" else item.id_token_info
            if raw is None:
                if full:
                    return "Failed"  # a Full list carries every entry's info
                removals.append(key)  # D01.FR.17
            else:
                token = _item_token(self.version, item)
                upserts[key] = LocalEntry(token=token, info=AuthInfo.of(self.version, raw))
        maximum = self._max_entries
        if maximum is None and self.version == "1.6":
            maximum = read_int(self.settings, "LocalAuthListMaxLength", 0) or None
        if maximum is not None:
            size = (
                len(upserts)
                if full
                else self.local_list.count()
                + sum(1 for k in upserts if self.local_list.get(k) is None)
                - sum(1 for k in removals if self.local_list.get(k) is not None)
            )
            if size > maximum:
                return "Failed"
        if full:
            self.local_list.replace(version, upserts)  # D01.FR.04, D01.FR.15
        else:
            self.local_list.apply(version, upserts, removals)  # D01.FR.05, D01.FR.16
        self._emit(
            LocalListUpdated(
                version=version,
                entries=self.local_list.count(),
                update_type="Full" if full else "Differential",
            )
        )
        return "Accepted"

    def _learn(self, action: str, request: Any, response: Any, now: float) -> None:
        """Update the cache from an answer carrying IdTagInfo / IdTokenInfo (1.6 §3.5.1,
        C10.FR.04/05, C12.FR.06); identifiers on the Local List are not cached (§3.5.3)."""
        pair = _token_and_info(self.version, action, request, response)
        if pair is None:
            return
        token, raw = pair
        info = AuthInfo.of(self.version, raw)
        key = token_key(self.version, token)
        listed = (
            self.local_list.get(key)
            if self.local_list is not None and self._flag("list_enabled", False)
            else None
        )
        if listed is not None:
            if self.version == "1.6" and (listed.info.status == ACCEPTED) != (
                info.status == ACCEPTED
            ):
                self._emit(LocalListConflict(token=token, local=listed.info, csms=info))
            return
        if self.cache is not None and self._flag("cache_enabled", True):
            self.cache.put(key, CacheEntry(token=token, info=info, stored_at=now, last_used=now))


def _passed(when: datetime, wall_now: datetime) -> bool:
    """Whether wall-clock ``when`` has come (naive means UTC)."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) <= wall_now


def _item_token(version: str, item: Any) -> Any:
    return item.id_tag if version == "1.6" else item.id_token


def _response_info(version: str, response: Any) -> Any:
    return response.id_tag_info if version == "1.6" else response.id_token_info


def _token_and_info(version: str, action: str, request: Any, response: Any) -> Any:
    if version == "1.6":
        if action in ("Authorize", "StartTransaction", "StopTransaction"):
            token, info = request.id_tag, response.id_tag_info
        else:
            return None
    elif action in ("Authorize", "TransactionEvent"):
        token, info = request.id_token, response.id_token_info
    else:
        return None
    return None if token is None or info is None else (token, info)


# --- the CSMS side ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LocalListSynced(FlowEvent):
    """CSMS side: the station accepted list ``version``."""

    version: int


@attrs.frozen(kw_only=True)
class LocalListOutOfSync(FlowEvent):
    """CSMS side: the station's list is not the one we hold (VersionMismatch or Failed for
    a differential update, or a GetLocalListVersion answer that differs); ``resent`` says
    we sent the full list again (D01.FR.03)."""

    station_version: int | None
    our_version: int
    status: str
    resent: bool


class LocalListSync(Emitter):
    """The CSMS's copy of one station's Local Authorization List, kept in step with it.

    ``update`` sends differential changes with the next version; a VersionMismatch or Failed
    answer to a differential update makes it send the whole list again (D01.FR.03, unless
    ``resend_full`` is False). Lists larger than ``items_per_message`` go as one Full part
    followed by Differential parts, each with its own version (D01.FR.03 note)."""

    def __init__(
        self,
        core: Any,
        *,
        version: int = 0,
        items_per_message: int = 100,
        resend_full: bool = True,
    ) -> None:
        super().__init__()
        if items_per_message < 1:
            raise ValueError("items_per_message must be >= 1")
        self.core = core
        self.version = version
        self.items_per_message = items_per_message
        self.resend_full = resend_full
        self._m = messages_for(core.version)
        #: Our list: key -> AuthorizationData with info.
        self.entries: dict[str, Any] = {}
        self._sent: dict[str, tuple[str, int]] = {}

    def set_full(self, entries: Sequence[Any], now: float) -> list[str]:
        """Replace the station's list with ``entries`` (AuthorizationData, each with its
        info); returns the message ids sent."""
        self.entries = {}
        for item in entries:
            if _item_info(self.core.version, item) is None:
                raise LocalProtocolError("a full local list needs the info of every entry")
            self.entries[token_key(self.core.version, _item_token(self.core.version, item))] = item
        return self._send_full(now)

    def update(self, changes: Sequence[Any], now: float) -> list[str]:
        """Send ``changes`` (AuthorizationData; without info means remove) as differential
        updates and apply them to our copy."""
        for item in changes:
            key = token_key(self.core.version, _item_token(self.core.version, item))
            if _item_info(self.core.version, item) is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = item
        return self._send_parts("Differential", list(changes), now)

    def request_version(self, now: float) -> str:
        return str(self.core.send_request(self._m.GetLocalListVersionRequest(), now))

    def _send_full(self, now: float) -> list[str]:
        items = list(self.entries.values())
        size = self.items_per_message
        ids = self._send_parts("Full", items[:size], now)
        if items[size:]:
            ids += self._send_parts("Differential", items[size:], now)
        return ids

    def _send_parts(self, update_type: str, items: list[Any], now: float) -> list[str]:
        m = self._m
        size = self.items_per_message
        ids = []
        for start in range(0, max(len(items), 1), size):
            self.version += 1
            chunk = items[start : start + size] or None
            kind = (m.UpdateType if self.core.version == "1.6" else m.UpdateEnum)(update_type)
            if self.core.version == "1.6":
                request = m.SendLocalListRequest(
                    list_version=self.version, update_type=kind, local_authorization_list=chunk
                )
            else:
                request = m.SendLocalListRequest(
                    version_number=self.version, update_type=kind, local_authorization_list=chunk
                )
            message_id = str(self.core.send_request(request, now))
            self._sent[message_id] = (update_type, self.version)
            ids.append(message_id)
        return ids

    def handle_event(self, event: Event, now: float) -> bool:
        if not isinstance(event, ResponseReceived):
            return False
        if event.action == "GetLocalListVersion":
            station = (
                event.response.list_version
                if self.core.version == "1.6"
                else event.response.version_number
            )
            if station != self.version:
                self._emit(
                    LocalListOutOfSync(
                        station_version=station,
                        our_version=self.version,
                        status="VersionDiffers",
                        resent=False,
                    )
                )
            return True
        sent = self._sent.pop(event.message_id, None)
        if event.action != "SendLocalList" or sent is None:
            return False
        update_type, version = sent
        status = str(event.response.status)
        if status == "Accepted":
            self._emit(LocalListSynced(version=version))
            return True
        resend = update_type == "Differential" and status in ("VersionMismatch", "Failed")
        resend = resend and self.resend_full
        self._emit(
            LocalListOutOfSync(
                station_version=None, our_version=version, status=status, resent=resend
            )
        )
        if resend:
            self._send_full(now)
        return True


def _item_info(version: str, item: Any) -> Any:
    return item.id_tag_info if version == "1.6" else item.id_token_info
