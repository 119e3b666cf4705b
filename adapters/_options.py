"""What ``connect()`` and ``serve()`` take besides their few common arguments, on every
adapter: one frozen, validated object each, so a typo or a contradiction fails where the
options are written, not at the first connection (after h2's ``H2Configuration``)."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from ocpp_sansio.config import CsmsConfig, StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.flows.host import FlowFactory

from ._ws import (
    CertificateCheck,
    PasswordLookup,
    PasswordTable,
    WsOptions,
    certificate_names_identity,
)

#: The peer's requests one connection may have with handlers at once by default; more
#: are answered with a CALLERROR.
DEFAULT_MAX_CALLS_IN_PROGRESS = 4

#: ``"received"`` or ``"sent"``, seen from our side of the connection.
Direction = Literal["received", "sent"]
#: ``observer(direction, identity, version, text, time)``: every OCPP frame that crosses a
#: connection, as text, with the wall-clock time it crossed. It runs inline on the
#: connection's path: keep it quick and let it not raise (an error is logged and dropped).
FrameObserver = Callable[[Direction, str, str, str, datetime], None]
#: Maps the adapter's clock (seconds) to wall-clock time, for the flows' dates.
WallClock = Callable[[float], datetime]
#: ``factory(identity, version)``: the CsmsCore for a station whose connection negotiated
#: ``version`` (called when the station first connects, or comes back with another version).
CoreFactory = Callable[[str, str], CsmsCore]


def _not_negative(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(_instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


def _callable_or_none(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.name} must be callable or None, got {value!r}")


_callable = attrs.validators.optional(attrs.validators.is_callable())
_ssl = attrs.validators.optional(attrs.validators.instance_of(ssl.SSLContext))


@attrs.frozen(kw_only=True)
class Backoff:
    """The station's reconnect waits (OCPP 2.x OCPPCommCtrlr.RetryBackOff*; 1.6 has no such
    keys: the same scheme with these defaults).

    Wait n (from 0) is ``minimum * 2**min(n, repeat_times)`` plus a new random part in
    ``[0, random_range]``; a successful connection starts again from wait 0.
    """

    minimum: float = attrs.field(default=10.0, validator=_not_negative)
    random_range: float = attrs.field(default=10.0, validator=_not_negative)
    repeat_times: int = attrs.field(default=5, validator=_not_negative)

    def waits(self, rng: random.Random) -> Any:
        doublings = 0
        while True:
            yield self.minimum * 2**doublings + rng.uniform(0, self.random_range)
            doublings = min(doublings + 1, self.repeat_times)


@attrs.frozen(kw_only=True)
class StationOptions:
    """Everything a station's ``connect(url, version=, boot=)`` may be told besides.

    - ``flows(core)``: the flows that see the core's events before the application.
    - ``station_config``, ``id_generator``: for the core ``connect()`` builds (give them
      to your own core instead when you pass ``core=``).
    - ``auth``: the HTTP Basic password, username = the identity (security profiles 1, 2);
      bytes go out as they are (a 1.6 AuthorizationKey as raw bytes).
    - ``ssl_context``: for ``wss://`` (default: the system's trust store); a client
      certificate in it gives security profile 3.
    - ``ws_options``: message size, pings, compression, timeouts.
    - ``backoff``, ``rng``, ``max_attempts``: the reconnect policy; ``max_attempts``
      failures in a row end the attempts (None: never).
    - ``observer``: sees every frame (``FrameObserver``).
    - ``wall_clock``: dates for the flows; default: the adapter's clock read as UTC.
    - ``max_calls_in_progress``: as ``ServerOptions``'s, for the CSMS's requests.
    """

    flows: FlowFactory | None = attrs.field(default=None, validator=_callable)
    station_config: StationConfig | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(StationConfig)),
    )
    auth: str | bytes | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of((str, bytes))),
    )
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, validator=_ssl)
    ws_options: WsOptions = attrs.field(
        default=WsOptions(), validator=attrs.validators.instance_of(WsOptions)
    )
    backoff: Backoff = attrs.field(
        default=Backoff(), validator=attrs.validators.instance_of(Backoff)
    )
    rng: random.Random | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(random.Random)),
    )
    max_attempts: int | None = attrs.field(default=None, validator=_at_least_one)
    id_generator: Callable[[], str] | None = attrs.field(default=None, validator=_callable)
    observer: FrameObserver | None = attrs.field(default=None, validator=_callable)
    wall_clock: WallClock | None = attrs.field(default=None, validator=_callable)
    max_calls_in_progress: int = attrs.field(
        default=DEFAULT_MAX_CALLS_IN_PROGRESS, validator=_at_least_one
    )


def _password_lookup(
    auth: PasswordLookup | Mapping[str, str | bytes] | None,
) -> PasswordLookup | None:
    return PasswordTable(auth) if isinstance(auth, Mapping) else auth


def _factory_alone(instance: ServerOptions, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (
        instance.csms_config is not None or instance.id_generator is not None
    ):
        raise TypeError(
            "csms_config and id_generator configure the cores serve() builds: "
            "with core_factory, give them to your cores"
        )


@attrs.frozen(kw_only=True)
class ServerOptions:
    """Everything a CSMS's ``serve(handler, host, port, versions=)`` may be told besides.

    - ``csms_config``, ``id_generator``: for every station's ``CsmsCore``; or
      ``core_factory(identity, version)`` makes each core (not both).
    - ``flows(core)``: the flows each station's core hosts.
    - ``auth(identity) -> password | None``: turns on HTTP Basic (profiles 1 and 2); a
      mapping of identity to password becomes a ``PasswordTable`` (one spelling per
      identity: identities are compared by ``identity_key``).
    - ``known_identity(identity) -> bool``: False answers HTTP 404.
    - ``certificate_check(identity, certificate) -> bool``: judges a TLS client certificate
      (security profile 3); False answers HTTP 403 before any session is touched. Default
      ``certificate_names_identity`` (its CN is the identity, A00.FR.405); None: no check.
    - ``ssl_context``: TLS (profile 2), mutual TLS when it requires client certificates
      (profile 3). Not for the ASGI adapter: there the web server does TLS.
    - ``ws_options``: message size, pings, compression, timeouts.
    - ``backlog``: the listen backlog.
    - ``session_keep``: how long (seconds) the session of a station whose connection ended
      is kept, so that the station resumes it (registration, flows) without a new boot
      (B04); then it is evicted, at the server's next connection or disconnection. Default
      600 s: longer than the longest reconnect wait of OCPP's default back-off (about 330 s).
    - ``max_kept_sessions``: the most sessions kept for stations that are not connected;
      past it the one gone longest is evicted early. It bounds the memory that identities
      minted on a CSMS without auth can take (connected stations are bounded by the
      connections the server accepts).
    - ``observer``: sees every frame of every station (``FrameObserver``).
    - ``wall_clock``: dates for the flows; default: the adapter's clock read as UTC.
    - ``boot_timeout``: a station whose registration the CSMS does not know (no
      BootNotification answered in its session, none restored from a store) and that
      has had none answered this many seconds after its handshake is closed with 1008.
      Any answer counts: Pending and Rejected stations stay connected (B02.FR.06). A
      station back on a session the CSMS knows (a reconnect, a store) has no deadline.
      0 turns it off.
    - ``max_connections``: connections open at once, in their handshake or not; past it
      a new one is answered HTTP 503 once its request head is read, and closed. Keep
      the process's descriptor limit (``ulimit -n``) above it.
    - ``max_calls_in_progress``: a station's requests with a handler at once (each a
      task or thread), per connection. OCPP-J lets a peer send a CALL only once its
      previous one was answered or timed out (section 4.1.1; 2.x FR.01), so one is the
      rule and a few cover requests sent again after a timeout while a slow handler
      still runs; past this many a request is answered at once with a CALLERROR (2.x
      RpcFrameworkError, 1.6 GenericError) and costs no task or thread.
    """

    csms_config: CsmsConfig | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(CsmsConfig)),
    )
    id_generator: Callable[[], str] | None = attrs.field(default=None, validator=_callable)
    core_factory: CoreFactory | None = attrs.field(
        default=None, validator=[_callable, _factory_alone]
    )
    flows: FlowFactory | None = attrs.field(default=None, validator=_callable)
    auth: PasswordLookup | None = attrs.field(
        default=None, converter=_password_lookup, validator=_callable
    )
    known_identity: Callable[[str], bool] | None = attrs.field(default=None, validator=_callable)
    certificate_check: CertificateCheck | None = attrs.field(
        default=certificate_names_identity, validator=_callable_or_none
    )
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, validator=_ssl)
    ws_options: WsOptions = attrs.field(
        default=WsOptions(), validator=attrs.validators.instance_of(WsOptions)
    )
    backlog: int = attrs.field(default=1024, validator=_at_least_one)
    session_keep: float = attrs.field(default=600.0, validator=_not_negative)
    max_kept_sessions: int = attrs.field(default=10_000, validator=_not_negative)
    observer: FrameObserver | None = attrs.field(default=None, validator=_callable)
    wall_clock: WallClock | None = attrs.field(default=None, validator=_callable)
    max_calls_in_progress: int = attrs.field(
        default=DEFAULT_MAX_CALLS_IN_PROGRESS, validator=_at_least_one
    )
    max_connections: int = attrs.field(default=10_000, validator=_at_least_one)
    boot_timeout: float = attrs.field(default=60.0, validator=_not_negative)
