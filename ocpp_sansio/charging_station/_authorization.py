"""Tokens (C01-C16, F01, F02): ``validate_token`` through the local list, the cache and
the CSMS, the master pass, and the remote starts that wait for their token's verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp_sansio.errors import LocalProtocolError
from ocpp_sansio.flows import AuthorizationDecided
from ocpp_sansio.flows.remote import RemoteStartAccepted

from ._events import TokenValidated

if TYPE_CHECKING:
    from ._evse import Evse
    from ._facade import ChargingStation


class Tokens:
    def __init__(self, station: ChargingStation) -> None:
        self.station = station
        self.v16 = station.version == "1.6"
        #: validate_token calls waiting for the CSMS: token key -> (token, EVSE).
        self._pending: dict[Any, tuple[Any, int | None]] = {}
        #: Remote starts waiting for their token's verdict: token key -> EVSE.
        self._remote_waiting: dict[Any, int] = {}
        #: The group (1.6 parentIdTag, 2.x groupIdToken) of each accepted token, for the
        #: reservations of its group (H01.FR.15, H03.FR.04/06; 1.6 §5.13).
        self._groups: dict[Any, str] = {}

    def key(self, token: Any) -> Any:
        """What identifies a token: 1.6 idTag, 2.x (idToken, type), case-insensitive."""
        if self.v16:
            return str(token).casefold()
        return (token.id_token.casefold(), str(token.type))

    def same(self, a: Any, b: Any) -> bool:
        return bool(self.key(a) == self.key(b))

    def group_of(self, token: Any) -> str | None:
        """The token's group, as its last authorization said."""
        return self._groups.get(self.key(token))

    def validate(
        self,
        id_token: Any,
        now: float,
        *,
        evse_id: int | None,
        certificate: str | None,
        ocsp_request_data: Any,
    ) -> bool | None:
        token = id_token if not self.v16 else str(id_token)
        if (certificate is not None or ocsp_request_data is not None) and self.v16:
            raise LocalProtocolError("1.6 Authorize carries no certificate")
        self._pending[self.key(token)] = (token, evse_id)
        decision = self.station.authorization.authorize(token, now)
        verdict = decision.verdict.value
        return None if verdict == "AskCsms" else verdict == "Accepted"

    def decided(self, event: AuthorizationDecided, now: float) -> None:
        station = self.station
        key = self.key(event.token)
        token, evse_id = self._pending.pop(key, (event.token, None))
        group = event.info.group if event.info is not None else None
        if event.accepted and group is not None:
            self._groups[key] = group
        master = None if self.v16 else station.setting.text("AuthCtrlr.MasterPassGroupId")
        if (
            event.accepted
            and master
            and group is not None
            and group.casefold() == master.casefold()
        ):
            # C16: a master pass stops every transaction and starts none.
            station.sessions.end_all(now, trigger="StopAuthorized", reason="MasterPass")
            return
        remote = self._remote_waiting.pop(key, None)
        if remote is not None:
            if event.accepted:
                station.sessions.authorize(station.evses[remote], token, now, cause="RemoteStart")
            else:
                station.remote.claim_start(remote, now)
            return
        station.router.emit(
            TokenValidated(
                id_token=token,
                accepted=event.accepted,
                source=event.source.value,
                info=event.info,
                evse_id=evse_id,
            )
        )

    # --- remote start (F01, F02)

    def remote_start(self, event: RemoteStartAccepted, now: float) -> None:
        """The driver is told to plug in; the token is authorized at once, or first asked
        for when AuthorizeRemoteStart says so (F01.FR.01/.02)."""
        station = self.station
        evse = self._free_evse(event.evse_id, event.id_token)
        if evse is None:
            station.remote.claim_start(event.evse_id or 0, now)
            return
        station.application.remote_start(evse.id, event.id_token, now)
        name = "AuthorizeRemoteTxRequests" if self.v16 else "AuthCtrlr.AuthorizeRemoteStart"
        if station.setting.flag(name, False):
            self._remote_waiting[self.key(event.id_token)] = evse.id
            station.authorization.authorize(event.id_token, now)
        else:
            station.sessions.authorize(evse, event.id_token, now, cause="RemoteStart")

    def _free_evse(self, wanted: int | None, token: Any) -> Evse | None:
        station = self.station
        candidates = [wanted] if wanted is not None else list(station.evses)
        waiting = set(self._remote_waiting.values())
        for number in candidates:
            evse = station.evses.get(number)
            if (
                evse is not None
                and station.status.operative(evse, None)
                and evse.transaction is None
                and number not in waiting
                and station.reservations.may_charge(number, token, self.group_of(token))
            ):
                return evse
        return None

    def check_start(self, request: Any) -> str | None:
        """A start on an EVSE reserved for someone else is refused (F01.FR.21/.22)."""
        if self.v16:
            wanted, token = request.connector_id, request.id_tag
            group = self.group_of(token)
        else:
            wanted, token = request.evse_id, request.id_token
            given = request.group_id_token
            group = self.group_of(token) if given is None else given.id_token
        station = self.station
        if wanted is not None and wanted in station.evses:
            return None if station.reservations.may_charge(wanted, token, group) else "Rejected"
        return None
