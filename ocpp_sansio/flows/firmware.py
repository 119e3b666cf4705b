"""Firmware updates, both sides (1.6 §5.19; 1.6 security extension L01;
2.x L01, L02; triggers F06.FR.14-16).

Three message families share one state machine:

- 1.6 ``UpdateFirmware`` / ``FirmwareStatusNotification``: no requestId, seven statuses;
- 1.6 security extension ``SignedUpdateFirmware`` / ``SignedFirmwareStatusNotification``;
- 2.0.1 / 2.1 ``UpdateFirmware`` with ``requestId``: secure (L01) when the request carries a
  signing certificate and signature, plain (L02) otherwise.

Station side, ``FirmwareUpdater``: the firmware-facing code reports what happens
(``download_started``, ``downloaded``, ``signature_verified``, ``installed`` …); the
updater checks the move is legal, sends the status the version has for it, waits for
``retrieveDateTime`` / ``installDateTime`` / the retry interval through
``next_deadline``/``handle_timer``, and tells the code when to act through its events.

CSMS side, ``FirmwareMonitor``: one per station; follows each update by requestId and
reports notifications that come out of order, for an unknown or cancelled update, or Idle
without a trigger.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any

import attrs

from ..csms import CsmsCore
from ..errors import LocalProtocolError
from ..events import Event, RequestReceived, ResponseReceived, TriggerAccepted
from ..station import StationCore
from ._base import (
    Activity,
    Emitter,
    FlowEvent,
    Outbox,
    StatusMonitor,
    WallClock,
    WallClocked,
    build,
    core_time,
    status_of,
)

# --- statuses -----------------------------------------------------------------------------

DOWNLOAD_SCHEDULED = "DownloadScheduled"
DOWNLOADING = "Downloading"
DOWNLOAD_PAUSED = "DownloadPaused"
DOWNLOADED = "Downloaded"
DOWNLOAD_FAILED = "DownloadFailed"
SIGNATURE_VERIFIED = "SignatureVerified"
INVALID_SIGNATURE = "InvalidSignature"
INSTALL_SCHEDULED = "InstallScheduled"
INSTALLING = "Installing"
INSTALL_REBOOTING = "InstallRebooting"
INSTALLED = "Installed"
INSTALLATION_FAILED = "InstallationFailed"
INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"
IDLE = "Idle"

#: Statuses after which the update is over.
FINAL_STATUSES = frozenset(
    {
        INSTALLED,
        DOWNLOAD_FAILED,
        INVALID_SIGNATURE,
        INSTALLATION_FAILED,
        INSTALL_VERIFICATION_FAILED,
    }
)
_FAILURES = FINAL_STATUSES - {INSTALLED}

#: 1.6 FirmwareStatusNotification knows only these.
PLAIN_1_6_STATUSES = frozenset(
    {DOWNLOADING, DOWNLOADED, DOWNLOAD_FAILED, INSTALLING, INSTALLED, INSTALLATION_FAILED, IDLE}
)

_INSTALL_STEPS = frozenset(
    {INSTALL_SCHEDULED, INSTALLING, INSTALL_REBOOTING, INSTALLATION_FAILED}
) | {INSTALL_VERIFICATION_FAILED}

#: Which status may follow which (None: the first of an update). "Downloading" may
#: repeat: a station MAY report it on every retry (L01.FR.30, L02.FR.19).
_NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({DOWNLOAD_SCHEDULED, DOWNLOADING}),
    DOWNLOAD_SCHEDULED: frozenset({DOWNLOADING, DOWNLOAD_FAILED}),
    DOWNLOADING: frozenset(
        {DOWNLOADING, DOWNLOAD_PAUSED, DOWNLOAD_SCHEDULED, DOWNLOADED, DOWNLOAD_FAILED}
    ),
    DOWNLOAD_PAUSED: frozenset({DOWNLOADING, DOWNLOAD_SCHEDULED, DOWNLOAD_FAILED}),
    # Downloaded: see allowed_next (signed updates verify the signature first).
    SIGNATURE_VERIFIED: _INSTALL_STEPS,
    INSTALL_SCHEDULED: _INSTALL_STEPS - {INSTALL_SCHEDULED},
    INSTALLING: frozenset(
        {INSTALL_REBOOTING, INSTALLED, INSTALLATION_FAILED, INSTALL_VERIFICATION_FAILED}
    ),
    INSTALL_REBOOTING: frozenset(
        {INSTALLING, INSTALLED, INSTALLATION_FAILED, INSTALL_VERIFICATION_FAILED}
    ),
}
_NEXT_PLAIN_1_6: dict[str | None, frozenset[str]] = {
    None: frozenset({DOWNLOADING}),
    DOWNLOADING: frozenset({DOWNLOADING, DOWNLOADED, DOWNLOAD_FAILED}),
    # Installed straight after Downloaded: the install reboots and cannot report Installing.
    DOWNLOADED: frozenset({INSTALLING, INSTALLED, INSTALLATION_FAILED}),
    INSTALLING: frozenset({INSTALLED, INSTALLATION_FAILED}),
}


class FirmwareFamily(enum.Enum):
    """Which messages carry an update."""

    PLAIN_1_6 = "1.6"
    SIGNED_1_6 = "1.6-signed"
    V2 = "2.x"


_NOTIFICATION = {
    FirmwareFamily.PLAIN_1_6: "FirmwareStatusNotification",
    FirmwareFamily.SIGNED_1_6: "SignedFirmwareStatusNotification",
    FirmwareFamily.V2: "FirmwareStatusNotification",
}


def allowed_next(family: FirmwareFamily, signed: bool, last: str | None) -> frozenset[str]:
    """The statuses that may follow ``last`` in an update (empty after a final one)."""
    if family is FirmwareFamily.PLAIN_1_6:
        return _NEXT_PLAIN_1_6.get(last, frozenset())
    if last == DOWNLOADED:
        if not signed:
            return _INSTALL_STEPS
        verdicts = frozenset({SIGNATURE_VERIFIED, INVALID_SIGNATURE})
        # The 1.6 security extension's own walk-through goes from Downloaded to Installing.
        return verdicts | _INSTALL_STEPS if family is FirmwareFamily.SIGNED_1_6 else verdicts
    return _NEXT.get(last, frozenset())


def _rule(family: FirmwareFamily, secure: str, plain: str, v16: str) -> str:
    """The requirement id of a rule in the family's numbering."""
    if family is FirmwareFamily.PLAIN_1_6:
        return v16
    return secure if family is FirmwareFamily.SIGNED_1_6 else f"{secure}/{plain}"


# --- station side -------------------------------------------------------------------------


class FirmwarePhase(enum.Enum):
    """Where a station-side update stands."""

    IDLE = "Idle"
    #: retrieveDateTime is in the future.
    AWAITING_RETRIEVE = "AwaitingRetrieve"
    #: Time to download: the firmware code should start.
    DOWNLOAD_DUE = "DownloadDue"
    #: The station postponed the download (busy).
    DOWNLOAD_DEFERRED = "DownloadDeferred"
    DOWNLOADING = "Downloading"
    DOWNLOAD_PAUSED = "DownloadPaused"
    #: An attempt failed; the next one waits for retryInterval.
    RETRY_WAIT = "RetryWait"
    #: Signed update downloaded; the signature is being checked.
    DOWNLOADED = "Downloaded"
    #: installDateTime is in the future, or running transactions hold the install.
    AWAITING_INSTALL = "AwaitingInstall"
    INSTALL_DUE = "InstallDue"
    INSTALLING = "Installing"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALLED = "Installed"
    DOWNLOAD_FAILED = "DownloadFailed"
    INVALID_SIGNATURE = "InvalidSignature"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"


_FINAL_PHASES = frozenset(
    {
        FirmwarePhase.INSTALLED,
        FirmwarePhase.DOWNLOAD_FAILED,
        FirmwarePhase.INVALID_SIGNATURE,
        FirmwarePhase.INSTALLATION_FAILED,
        FirmwarePhase.INSTALL_VERIFICATION_FAILED,
    }
)
#: Phases in which a new request cancels the update without trouble (L01.FR.24).
_CANCELLABLE = (
    frozenset(FirmwarePhase)
    - _FINAL_PHASES
    - {FirmwarePhase.IDLE, FirmwarePhase.INSTALLING, FirmwarePhase.INSTALL_REBOOTING}
)
#: The firmware code's inputs and the phases each is legal in. Time guards (retrieve,
#: retry and install times) are checked on top.
LEGAL_INPUTS: dict[str, frozenset[FirmwarePhase]] = {
    "download_started": frozenset(
        {FirmwarePhase.DOWNLOAD_DUE, FirmwarePhase.DOWNLOAD_DEFERRED, FirmwarePhase.DOWNLOAD_PAUSED}
    ),
    "download_deferred": frozenset({FirmwarePhase.DOWNLOAD_DUE}),
    "download_paused": frozenset({FirmwarePhase.DOWNLOADING}),
    "download_failed": frozenset({FirmwarePhase.DOWNLOADING, FirmwarePhase.DOWNLOAD_PAUSED}),
    "downloaded": frozenset({FirmwarePhase.DOWNLOADING}),
    "signature_verified": frozenset({FirmwarePhase.DOWNLOADED}),
    "signature_invalid": frozenset({FirmwarePhase.DOWNLOADED}),
    "install_deferred": frozenset({FirmwarePhase.INSTALL_DUE}),
    "install_started": frozenset(
        {FirmwarePhase.INSTALL_DUE, FirmwarePhase.AWAITING_INSTALL, FirmwarePhase.INSTALL_REBOOTING}
    ),
    "install_rebooting": frozenset(
        {FirmwarePhase.INSTALL_DUE, FirmwarePhase.AWAITING_INSTALL, FirmwarePhase.INSTALLING}
    ),
    "installed": frozenset({FirmwarePhase.INSTALLING, FirmwarePhase.INSTALL_REBOOTING}),
    "install_failed": frozenset(
        {
            FirmwarePhase.AWAITING_INSTALL,
            FirmwarePhase.INSTALL_DUE,
            FirmwarePhase.INSTALLING,
            FirmwarePhase.INSTALL_REBOOTING,
        }
    ),
    "install_verification_failed": frozenset(
        {
            FirmwarePhase.AWAITING_INSTALL,
            FirmwarePhase.INSTALL_DUE,
            FirmwarePhase.INSTALLING,
            FirmwarePhase.INSTALL_REBOOTING,
        }
    ),
}

#: Why a phase refuses the inputs it refuses, when time is the reason.
_WAITING_FOR = {
    FirmwarePhase.AWAITING_RETRIEVE: "retrieveDateTime has not come yet (1.6 §5.19, L01.FR.13)",
    FirmwarePhase.RETRY_WAIT: "the retry interval has not passed yet",
    FirmwarePhase.AWAITING_INSTALL: "installDateTime has not come yet (L01.FR.16, L02.FR.10)",
}

CHECK_VERDICTS = frozenset({"Rejected", "InvalidCertificate", "RevokedCertificate"})


@attrs.frozen(kw_only=True)
class FirmwareDownloadDue(FlowEvent):
    """Start downloading now (attempt ``attempt`` of ``attempts``)."""

    request_id: int | None
    location: str
    attempt: int
    attempts: int
    request: Any


@attrs.frozen(kw_only=True)
class FirmwareInstallDue(FlowEvent):
    """The downloaded (and verified) firmware may be installed now."""

    request_id: int | None
    request: Any


@attrs.frozen(kw_only=True)
class FirmwareUpdateCanceled(FlowEvent):
    """A new request replaced this update (AcceptedCanceled): stop working on it."""

    request_id: int | None
    request: Any


@attrs.frozen(kw_only=True)
class FirmwareUpdateRefused(FlowEvent):
    """We did not take a request: ``status`` is what we answered (None: 1.6's empty
    answer, which cannot refuse)."""

    message_id: str
    request: Any
    status: str | None
    reason: str


@attrs.frozen(kw_only=True)
class FirmwareSnapshot:
    """What survives a reboot in the middle of an update (persist it; pass it as
    ``resume`` to the next power-up's updater)."""

    family: FirmwareFamily
    signed: bool
    request: Any
    phase: FirmwarePhase
    reported: str | None
    attempts_made: int


@attrs.define(eq=False)
class _Update:
    family: FirmwareFamily
    signed: bool
    request: Any
    request_id: int | None
    location: str
    attempts: int
    retry_interval: float
    retrieve_at: float
    install_at: float | None
    attempts_made: int = 0


#: The status notifications a trigger may ask of this flow (by "is it 1.6").
_TRIGGERED = {
    True: ("FirmwareStatusNotification", "SignedFirmwareStatusNotification"),
    False: ("FirmwareStatusNotification",),
}


class FirmwareUpdater(Emitter, WallClocked):
    """Station side of firmware updates. Feed it the core's events (``handle_event``) and
    its own timer; drive it from the firmware-facing code; read its events.

    ``check(request)`` may veto a request before it is accepted: return None to go on, or
    "Rejected", "InvalidCertificate" or "RevokedCertificate" (the certificate check of
    L01.FR.21). ``retries`` absent from a request means ``default_retries``; retries count
    the attempts after the first.
    """

    def __init__(
        self,
        core: StationCore,
        *,
        activity: Activity | None = None,
        check: Callable[[Any], str | None] | None = None,
        accept_unsigned_1_6: bool = True,
        cancel_installation: bool = False,
        install_during_transactions: bool = False,
        default_retries: int = 2,
        default_retry_interval: float = 60.0,
        security_events: bool = True,
        wall_clock: WallClock | None = None,
        resume: FirmwareSnapshot | None = None,
    ) -> None:
        super().__init__()
        if default_retries < 0 or default_retry_interval < 0:
            raise ValueError("default retries and retry interval must be >= 0")
        self.core = core
        self.version = core.version
        self.outbox = Outbox(core)
        # F06.FR.16, 1.6 §4.5: this flow answers the firmware status triggers.
        core.serve_triggers(*_TRIGGERED[core.version == "1.6"])
        self.activity = activity
        self._check = check
        self.accept_unsigned_1_6 = accept_unsigned_1_6
        self.cancel_installation = cancel_installation
        self.install_during_transactions = install_during_transactions
        self.default_retries = default_retries
        self.default_retry_interval = default_retry_interval
        self.security_events = security_events
        self._own_clock = wall_clock
        self.phase = FirmwarePhase.IDLE
        self._update: _Update | None = None
        #: The last status reported per family (what a trigger repeats).
        self._reported: dict[FirmwareFamily, str | None] = {}
        self._due_at: float | None = None
        #: AwaitingInstall because the firmware code said so (install_deferred).
        self._held_by_station = False
        self._reboot_for_update = False
        if activity is not None:
            activity.subscribe(self._activity_changed)
        if resume is not None:
            self._resume(resume)

    # --- what the application reads ------------------------------------------------------

    @property
    def request_id(self) -> int | None:
        return self._update.request_id if self._update is not None else None

    @property
    def running(self) -> bool:
        """An update is accepted and not finished."""
        return self.phase is not FirmwarePhase.IDLE and self.phase not in _FINAL_PHASES

    def reported_status(self, family: FirmwareFamily | None = None) -> str | None:
        """The last status reported (in ``family``, default: the current update's)."""
        if family is None:
            family = self._update.family if self._update is not None else self._default_family()
        return self._reported.get(family)

    @property
    def waiting_for_transactions(self) -> bool:
        """The install waits for the running transactions to end (L01.FR.06, L02.FR.03)."""
        return (
            self.phase is FirmwarePhase.AWAITING_INSTALL
            and self._due_at is None
            and not self._held_by_station
            and self._transactions_hold_install()
        )

    @property
    def reboot_pending(self) -> bool:
        """The next reboot is the update's (boot with reason FirmwareUpdate in 2.x)."""
        return self._reboot_for_update

    def boot_request(self, base: Any) -> Any:
        """The BootNotification for the next power-up: ``base`` with reason
        FirmwareUpdate when the update caused the reboot (2.x; 1.6 has no reason)."""
        if self.version == "1.6" or not self._reboot_for_update:
            return base
        reason_type = type(base.reason)
        return attrs.evolve(base, reason=reason_type("FirmwareUpdate"))

    def snapshot(self) -> FirmwareSnapshot | None:
        """The update to carry across a reboot, or None when none is running."""
        update = self._update
        if update is None or not self.running:
            return None
        return FirmwareSnapshot(
            family=update.family,
            signed=update.signed,
            request=update.request,
            phase=self.phase,
            reported=self._reported.get(update.family),
            attempts_made=update.attempts_made,
        )

    # --- the core's events ---------------------------------------------------------------

    def handle_event(self, event: Event, now: float) -> bool:
        """True when the event was ours (answered or settled here)."""
        if self.outbox.handle_event(event, now):
            return True
        if isinstance(event, RequestReceived):
            if event.action in ("UpdateFirmware", "SignedUpdateFirmware"):
                self._on_request(event, now)
                return True
            return False
        if isinstance(event, TriggerAccepted) and event.action in _TRIGGERED[True]:
            self._on_trigger(event.action, now)
            return True
        return False

    def _default_family(self) -> FirmwareFamily:
        return FirmwareFamily.V2 if self.version != "1.6" else FirmwareFamily.PLAIN_1_6

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if self.version == "1.6" and event.action == "UpdateFirmware":
            family, signed = FirmwareFamily.PLAIN_1_6, False
            if not self.accept_unsigned_1_6:
                # 1.6 security extension L01.FR.20: a secure station refuses the old message.
                self.core.send_error(
                    event.message_id,
                    "NotSupported",
                    "this station updates firmware with SignedUpdateFirmware only",
                )
                self._emit(
                    FirmwareUpdateRefused(
                        message_id=event.message_id,
                        request=request,
                        status=None,
                        reason="UpdateFirmware is not supported (1.6 security L01.FR.20)",
                    )
                )
                return
        elif self.version == "1.6":
            family, signed = FirmwareFamily.SIGNED_1_6, True
        else:
            firmware = request.firmware
            family = FirmwareFamily.V2
            signed = firmware.signing_certificate is not None and firmware.signature is not None

        verdict = self._check(request) if self._check is not None else None
        if verdict is not None and verdict not in CHECK_VERDICTS:
            raise LocalProtocolError(f"check returned {verdict!r}; use one of {CHECK_VERDICTS}")
        if verdict is not None:
            self._refuse(event, family, verdict, f"refused by the station's check: {verdict}", now)
            if verdict in ("InvalidCertificate", "RevokedCertificate"):
                self._security_event("InvalidFirmwareSigningCertificate", now)  # L01.FR.02
            return

        status = "Accepted"
        if self.running:
            if self.phase not in _CANCELLABLE and not self.cancel_installation:
                rule = _rule(family, "L01.FR.27", "L02.FR.18", "1.6 §5.19")
                self._refuse(
                    event,
                    family,
                    "Rejected",
                    f"the running update is {self.phase.value} and cannot be cancelled ({rule})",
                    now,
                )
                return
            self._cancel(now)
            status = "AcceptedCanceled"  # L01.FR.24, L02.FR.15
        self._answer(event, family, status, now)
        self._start(family, signed, request, now)

    def _answer(
        self, event: RequestReceived, family: FirmwareFamily, status: str, now: float
    ) -> None:
        response_cls = self.core.registry[event.action].response
        assert response_cls is not None
        if family is FirmwareFamily.PLAIN_1_6:
            response = response_cls()
        else:
            response = build(response_cls, status=status)
        self.core.send_response(event.message_id, response, now)

    def _refuse(
        self, event: RequestReceived, family: FirmwareFamily, status: str, reason: str, now: float
    ) -> None:
        self._answer(event, family, status, now)
        self._emit(
            FirmwareUpdateRefused(
                message_id=event.message_id,
                request=event.request,
                status=None if family is FirmwareFamily.PLAIN_1_6 else status,
                reason=reason,
            )
        )

    def _cancel(self, now: float) -> None:
        update = self._update
        assert update is not None
        self._emit(FirmwareUpdateCanceled(request_id=update.request_id, request=update.request))
        self._finish(self.phase, now)

    def _start(self, family: FirmwareFamily, signed: bool, request: Any, now: float) -> None:
        if family is FirmwareFamily.PLAIN_1_6:
            request_id = None
            location = request.location
            retrieve = request.retrieve_date
            install = None
        else:
            request_id = request.request_id
            location = request.firmware.location
            retrieve = request.firmware.retrieve_date_time
            install = request.firmware.install_date_time
        retries = request.retries if request.retries is not None else self.default_retries
        interval = request.retry_interval
        self._update = _Update(
            family=family,
            signed=signed,
            request=request,
            request_id=request_id,
            location=location,
            attempts=1 + max(0, retries),
            retry_interval=float(interval) if interval is not None else self.default_retry_interval,
            retrieve_at=core_time(retrieve, now, self.clock),
            install_at=core_time(install, now, self.clock) if install is not None else None,
        )
        self._reported[family] = None
        self._reboot_for_update = False
        self._set_task(now, interruptible=True)
        if self._update.retrieve_at > now:
            self.phase = FirmwarePhase.AWAITING_RETRIEVE
            self._due_at = self._update.retrieve_at
            self._notify(DOWNLOAD_SCHEDULED, now)  # L01.FR.13, L02.FR.07
        else:
            self._download_due(now)

    def _resume(self, snapshot: FirmwareSnapshot) -> None:
        request = snapshot.request
        plain = snapshot.family is FirmwareFamily.PLAIN_1_6
        self._update = _Update(
            family=snapshot.family,
            signed=snapshot.signed,
            request=request,
            request_id=None if plain else request.request_id,
            location=request.location if plain else request.firmware.location,
            attempts=1
            + max(0, request.retries if request.retries is not None else self.default_retries),
            retry_interval=(
                float(request.retry_interval)
                if request.retry_interval is not None
                else self.default_retry_interval
            ),
            retrieve_at=0.0,
            install_at=None,
            attempts_made=snapshot.attempts_made,
        )
        self._reported[snapshot.family] = snapshot.reported
        # A reboot ends every wait: what was due is due now.
        waiting = {
            FirmwarePhase.AWAITING_RETRIEVE: FirmwarePhase.DOWNLOAD_DUE,
            FirmwarePhase.RETRY_WAIT: FirmwarePhase.DOWNLOAD_DUE,
            FirmwarePhase.DOWNLOAD_DEFERRED: FirmwarePhase.DOWNLOAD_DUE,
            FirmwarePhase.DOWNLOADING: FirmwarePhase.DOWNLOAD_DUE,
            FirmwarePhase.DOWNLOAD_PAUSED: FirmwarePhase.DOWNLOAD_DUE,
            FirmwarePhase.AWAITING_INSTALL: FirmwarePhase.INSTALL_DUE,
        }
        self.phase = waiting.get(snapshot.phase, snapshot.phase)
        if self.activity is not None:
            self.activity.task_started(
                "firmware",
                0.0,
                interruptible=self.phase
                not in (FirmwarePhase.INSTALLING, FirmwarePhase.INSTALL_REBOOTING),
            )

    # --- triggers (F06.FR.14-16) ------------------------------------------------------------

    def _on_trigger(self, action: str, now: float) -> None:
        if self.version == "1.6" and action == "FirmwareStatusNotification":
            family = FirmwareFamily.PLAIN_1_6
        elif self.version == "1.6":
            family = FirmwareFamily.SIGNED_1_6
        else:
            family = FirmwareFamily.V2
        update = self._update
        current = update is not None and update.family is family
        reported = self._reported.get(family) if current else None
        if family is FirmwareFamily.PLAIN_1_6:
            # 1.6 §4.5: Idle only when not busy downloading or installing; between two
            # attempts the update is still under way, so its last status stands.
            status = reported if current and self.running and reported is not None else IDLE
        else:
            # L01.FR.25/26, L02.FR.16/17, F06.FR.16: repeat the last status, Idle after
            # Installed or when nothing was ever reported.
            status = IDLE if reported in (None, INSTALLED) else reported
        assert status is not None
        request_id = None if status == IDLE or update is None else update.request_id
        payload = self._payload(family, status, request_id)
        self.outbox.submit_requested(payload, now, supersedes=_NOTIFICATION[family])

    # --- the firmware code's inputs -------------------------------------------------------------

    def _require(self, name: str, now: float) -> _Update:
        update = self._update
        if update is None or not self.running:
            raise LocalProtocolError(f"cannot report {name}: no firmware update is running")
        if self.phase not in LEGAL_INPUTS[name]:
            reason = _WAITING_FOR.get(self.phase, "not a legal move")
            raise LocalProtocolError(
                f"cannot report {name} while the update is {self.phase.value}: {reason}"
            )
        if (
            name in ("install_started", "install_rebooting")
            and self.phase is FirmwarePhase.AWAITING_INSTALL
            and update.install_at is not None
            and now < update.install_at
        ):
            raise LocalProtocolError(f"cannot report {name}: {_WAITING_FOR[self.phase]}")
        return update

    def download_started(self, now: float) -> None:
        """A download attempt began (or a paused one resumed)."""
        update = self._require("download_started", now)
        if self.phase is not FirmwarePhase.DOWNLOAD_PAUSED:
            update.attempts_made += 1
        self._enter(FirmwarePhase.DOWNLOADING, now)
        self._notify(DOWNLOADING, now)  # a new Downloading per attempt is allowed (L01.FR.30)

    def download_deferred(self, now: float) -> None:
        """The station cannot download now (busy charging): report DownloadScheduled."""
        self._require("download_deferred", now)
        self._enter(FirmwarePhase.DOWNLOAD_DEFERRED, now)
        if self.reported_status() != DOWNLOAD_SCHEDULED:
            self._notify(DOWNLOAD_SCHEDULED, now)  # L01.FR.13, L02.FR.07

    def download_paused(self, now: float) -> None:
        self._require("download_paused", now)
        self._enter(FirmwarePhase.DOWNLOAD_PAUSED, now)
        self._notify(DOWNLOAD_PAUSED, now)  # L01.FR.14, L02.FR.08

    def download_failed(self, now: float) -> None:
        """This attempt failed. Retries wait retryInterval; after the last attempt the
        update ends with DownloadFailed (L01.FR.30, L02.FR.19)."""
        update = self._require("download_failed", now)
        if update.attempts_made < update.attempts:
            self._enter(FirmwarePhase.RETRY_WAIT, now)
            self._due_at = now + update.retry_interval
            if self._due_at <= now:
                self._download_due(now)
            return
        self._fail(FirmwarePhase.DOWNLOAD_FAILED, DOWNLOAD_FAILED, now)

    def downloaded(self, now: float) -> None:
        update = self._require("downloaded", now)
        self._enter(FirmwarePhase.DOWNLOADED, now)
        self._notify(DOWNLOADED, now)
        if not update.signed:
            self._plan_install(now)

    def signature_verified(self, now: float) -> None:
        """The firmware's signature checked out (L01.FR.04)."""
        self._require("signature_verified", now)
        self._notify(SIGNATURE_VERIFIED, now)
        self._plan_install(now)

    def signature_invalid(self, now: float) -> None:
        """The signature did not verify: the update ends (L01.FR.03)."""
        self._require("signature_invalid", now)
        self._fail(FirmwarePhase.INVALID_SIGNATURE, INVALID_SIGNATURE, now)
        self._security_event("InvalidFirmwareSignature", now)

    def install_deferred(self, now: float) -> None:
        """The station holds the install (waiting for transactions to end): report
        InstallScheduled (L01.FR.34, L02.FR.23); call ``install_started`` when ready."""
        self._require("install_deferred", now)
        self._enter(FirmwarePhase.AWAITING_INSTALL, now)
        self._held_by_station = True
        if self.reported_status() != INSTALL_SCHEDULED:
            self._notify(INSTALL_SCHEDULED, now)

    def install_started(self, now: float) -> None:
        self._require("install_started", now)
        self._enter(FirmwarePhase.INSTALLING, now)
        self._notify(INSTALLING, now)

    def install_rebooting(self, now: float) -> None:
        """The station reboots to install (L01.FR.15) or to activate (L01.FR.32). Persist
        ``snapshot()`` and boot with ``boot_request``; report the outcome afterwards."""
        self._require("install_rebooting", now)
        self._enter(FirmwarePhase.INSTALL_REBOOTING, now)
        self._reboot_for_update = True
        self._notify(INSTALL_REBOOTING, now)

    def installed(self, now: float, *, reboot: bool = False) -> None:
        """The new firmware is installed (L01.FR.28). ``reboot``: activating it takes a
        reboot that is not reported (option b of L01.FR.32)."""
        update = self._require("installed", now)
        self._reboot_for_update = self._reboot_for_update or reboot
        self.phase = FirmwarePhase.INSTALLED
        self._notify(INSTALLED, now)
        if update.signed:
            self._security_event("FirmwareUpdated", now)  # L01.FR.31
        self._finish(FirmwarePhase.INSTALLED, now)

    def install_failed(self, now: float) -> None:
        self._require("install_failed", now)
        self._fail(FirmwarePhase.INSTALLATION_FAILED, INSTALLATION_FAILED, now)

    def install_verification_failed(self, now: float) -> None:
        """The installed image failed its check (L01.FR.29)."""
        self._require("install_verification_failed", now)
        self._fail(FirmwarePhase.INSTALL_VERIFICATION_FAILED, INSTALL_VERIFICATION_FAILED, now)

    # --- moves -----------------------------------------------------------------------------

    def _enter(self, phase: FirmwarePhase, now: float) -> None:
        self.phase = phase
        self._due_at = None
        self._held_by_station = False
        if phase in (FirmwarePhase.INSTALLING, FirmwarePhase.INSTALL_REBOOTING):
            self._set_task(now, interruptible=False)

    def _download_due(self, now: float) -> None:
        update = self._update
        assert update is not None
        self._enter(FirmwarePhase.DOWNLOAD_DUE, now)
        self._emit(
            FirmwareDownloadDue(
                request_id=update.request_id,
                location=update.location,
                attempt=update.attempts_made + 1,
                attempts=update.attempts,
                request=update.request,
            )
        )

    def _plan_install(self, now: float) -> None:
        update = self._update
        assert update is not None
        if update.install_at is not None and update.install_at > now:
            self._enter(FirmwarePhase.AWAITING_INSTALL, now)
            self._due_at = update.install_at
            self._notify(INSTALL_SCHEDULED, now)  # L01.FR.16, L02.FR.10
        elif self._transactions_hold_install():
            self._enter(FirmwarePhase.AWAITING_INSTALL, now)
            self._notify(INSTALL_SCHEDULED, now)  # L01.FR.06 with FR.34; L02.FR.03/.23
        else:
            self._install_due(now)

    def _install_due(self, now: float) -> None:
        update = self._update
        assert update is not None
        self._enter(FirmwarePhase.INSTALL_DUE, now)
        self._emit(FirmwareInstallDue(request_id=update.request_id, request=update.request))

    def _transactions_hold_install(self) -> bool:
        return (
            self.activity is not None
            and not self.install_during_transactions
            and bool(self.activity.transactions())
        )

    def _fail(self, phase: FirmwarePhase, status: str, now: float) -> None:
        self.phase = phase
        self._notify(status, now)
        self._finish(phase, now)

    def _finish(self, phase: FirmwarePhase, now: float) -> None:
        self.phase = phase
        self._due_at = None
        if self.activity is not None:
            self.activity.task_ended("firmware", now)

    def _set_task(self, now: float, *, interruptible: bool) -> None:
        if self.activity is not None:
            self.activity.task_started("firmware", now, interruptible=interruptible)

    def _activity_changed(self, now: float) -> None:
        if (
            self.phase is FirmwarePhase.AWAITING_INSTALL
            and self._due_at is None
            and not self._held_by_station
            and not self._transactions_hold_install()
        ):
            self._install_due(now)

    # --- notifications ---------------------------------------------------------------------

    def _payload(self, family: FirmwareFamily, status: str, request_id: int | None) -> Any:
        cls = self.core.registry[_NOTIFICATION[family]].request
        if family is FirmwareFamily.PLAIN_1_6:
            return build(cls, status=status)
        return build(cls, status=status, request_id=request_id)

    def _notify(self, status: str, now: float) -> None:
        """Report a new status (L01.FR.01, L02.FR.01), with the update's requestId
        (L01.FR.10, L02.FR.06); statuses 1.6's message lacks are not reported."""
        update = self._update
        assert update is not None
        if update.family is FirmwareFamily.PLAIN_1_6:
            # 1.6 has one failure for the install; the other steps it cannot report.
            if status == INSTALL_VERIFICATION_FAILED:
                status = INSTALLATION_FAILED
            if status not in PLAIN_1_6_STATUSES:
                return
            last = self._reported.get(update.family)
            if status == last and status not in allowed_next(update.family, False, last):
                # The step between (InstallRebooting) has no 1.6 status: nothing new.
                return
        self._reported[update.family] = status
        self.outbox.submit(self._payload(update.family, status, update.request_id), now)

    def _security_event(self, kind: str, now: float) -> None:
        if not self.security_events:
            return
        cls = self.core.registry["SecurityEventNotification"].request
        self.outbox.submit(cls(type=kind, timestamp=self.clock(now)), now)

    # --- time ------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._due_at

    def handle_timer(self, now: float) -> None:
        self.outbox.flush(now)
        if self._due_at is None or now < self._due_at:
            return
        self._due_at = None
        if self.phase in (FirmwarePhase.AWAITING_RETRIEVE, FirmwarePhase.RETRY_WAIT):
            self._download_due(now)
        elif self.phase is FirmwarePhase.AWAITING_INSTALL and not self._transactions_hold_install():
            self._install_due(now)


# --- CSMS side ----------------------------------------------------------------------------


@attrs.define(eq=False)
class FirmwareProgress:
    """One update as the CSMS sees it."""

    family: FirmwareFamily
    request_id: int | None
    request: Any
    signed: bool
    statuses: list[str] = attrs.Factory(list)
    #: A later request replaced it (AcceptedCanceled).
    canceled: bool = False

    @property
    def status(self) -> str | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def finished(self) -> bool:
        return self.canceled or self.status in FINAL_STATUSES


@attrs.frozen(kw_only=True)
class FirmwareStatusReported(FlowEvent):
    """The station reported ``status`` for update ``request_id``."""

    request_id: int | None
    status: str
    triggered: bool
    progress: FirmwareProgress | None


class FirmwareMonitor(StatusMonitor):
    """CSMS side: each update's progress, by requestId (1.6 plain: the latest update).

    Feed it the core's events. It answers the station's status notifications (their
    answer is empty) unless ``answer`` is False, and reports each status as
    ``FirmwareStatusReported`` and each rule broken as ``FlowAnomaly``.
    """

    requests = ("UpdateFirmware", "SignedUpdateFirmware")
    notifications = ("FirmwareStatusNotification", "SignedFirmwareStatusNotification")

    def __init__(self, core: CsmsCore, *, answer: bool = True) -> None:
        super().__init__(core, answer=answer)
        #: Updates by requestId, in the order the station accepted them (1.6 plain
        #: updates have no requestId: the latest is under None).
        self.updates: dict[int | None, FirmwareProgress] = {}
        #: The update a 1.6 plain request replaced, whose last statuses may still come.
        self._replaced_plain: FirmwareProgress | None = None

    def latest(self, family: FirmwareFamily | None = None) -> FirmwareProgress | None:
        for progress in reversed(self.updates.values()):
            if family in (None, progress.family):
                return progress
        return None

    def _family(self, action: str) -> FirmwareFamily:
        if self.version != "1.6":
            return FirmwareFamily.V2
        return (
            FirmwareFamily.PLAIN_1_6 if action.startswith("Firmware") else FirmwareFamily.SIGNED_1_6
        )

    def _on_answer(self, event: ResponseReceived) -> None:
        family = self._family(
            "FirmwareStatusNotification"
            if event.action == "UpdateFirmware"
            else "SignedFirmwareStatusNotification"
        )
        status = "Accepted" if family is FirmwareFamily.PLAIN_1_6 else status_of(event.response)
        if status not in ("Accepted", "AcceptedCanceled"):
            return
        request = event.request
        if family is FirmwareFamily.PLAIN_1_6:
            request_id, signed = None, False
        else:
            request_id = request.request_id
            signed = family is FirmwareFamily.SIGNED_1_6 or (
                request.firmware.signing_certificate is not None
                and request.firmware.signature is not None
            )
        for progress in self.updates.values():
            if not progress.finished:
                progress.canceled = True
        replaced = self.updates.get(None)
        if family is FirmwareFamily.PLAIN_1_6 and replaced is not None and replaced.statuses:
            # One that never reported anything cannot be what late statuses are about.
            self._replaced_plain = replaced
        self.updates.pop(request_id, None)
        self.updates[request_id] = FirmwareProgress(
            family=family, request_id=request_id, request=request, signed=signed
        )

    def _plain_update_for(self, status: str, triggered: bool) -> FirmwareProgress | None:
        """1.6 statuses carry no requestId: they belong to the latest update, except that
        the replaced update's last statuses may still arrive after the new one's answer."""
        latest = self.updates.get(None)
        previous = self._replaced_plain
        if (
            latest is not None
            and previous is not None
            and not latest.statuses
            and status not in allowed_next(FirmwareFamily.PLAIN_1_6, False, None)
            and (
                status in allowed_next(FirmwareFamily.PLAIN_1_6, False, previous.status)
                or (triggered and status == previous.status)
            )
        ):
            return previous
        return latest

    def _on_status(self, event: RequestReceived) -> None:
        family = self._family(event.action)
        request = event.request
        status = status_of(request)
        request_id = getattr(request, "request_id", None)
        triggered = event.requested_by is not None
        anomaly = functools.partial(self._emit_anomaly, event, status=status, request_id=request_id)
        if status == IDLE:
            latest = self.latest(family)
            if not triggered:
                anomaly(
                    _rule(family, "L01.FR.25", "F06.FR.16", "1.6 §4.5"),
                    "Idle is only sent in answer to a TriggerMessage",
                )
            elif latest is not None and not latest.finished and latest.status is not None:
                anomaly(
                    _rule(family, "L01.FR.26", "L02.FR.17", "1.6 §4.5"),
                    f"Idle while update {latest.request_id} is {latest.status}",
                )
            self._emit(
                FirmwareStatusReported(
                    request_id=request_id, status=status, triggered=triggered, progress=None
                )
            )
            return
        if family is FirmwareFamily.PLAIN_1_6:
            progress = self._plain_update_for(status, triggered)
        elif request_id is None:
            anomaly(
                _rule(family, "L01.FR.20", "L02.FR.14", ""),
                f"{status} without the update's requestId",
            )
            progress = self.latest(family)
        else:
            progress = self.updates.get(request_id)
        if progress is None:
            anomaly(
                _rule(family, "L01.FR.10", "L02.FR.06", "1.6 §4.5"),
                "status for an update the CSMS did not start (unknown requestId)",
            )
        elif (
            not (triggered and status == progress.status)
            and status not in allowed_next(family, progress.signed, progress.status)
            # A cancelled update may still end in a failure (note of L01.FR.24).
            and not (progress.canceled and status in _FAILURES)
        ):
            previous = progress.status or "the start"
            cancelled = " of a cancelled update" if progress.canceled else ""
            anomaly(
                _rule(family, "L01.FR.01", "L02.FR.01", "1.6 §4.5"),
                f"{status} out of order after {previous}{cancelled}",
            )
        if progress is not None and not (triggered and status == progress.status):
            progress.statuses.append(status)
        self._emit(
            FirmwareStatusReported(
                request_id=request_id, status=status, triggered=triggered, progress=progress
            )
        )
