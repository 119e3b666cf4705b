"""Diagnostics and log uploads, both sides (N01; 1.6 §5.9 and the security extension;
triggers F06.FR.14/15).

- 1.6 ``GetDiagnostics`` / ``DiagnosticsStatusNotification``: the answer names the file
  (no name: nothing to upload), then Uploading → Uploaded | UploadFailed; no requestId.
- ``GetLog`` / ``LogStatusNotification`` (1.6 security extension, 2.x N01): Accepted,
  Rejected or AcceptedCanceled with a file name, then Uploading → Uploaded, or a failure
  (UploadFailure, BadMessage, PermissionDenied, NotSupportedOperation), every status with
  the request's requestId (N01.FR.07).

Station side, ``DiagnosticsUploader`` and ``LogUploader``: the upload code reports
``upload_started`` / ``uploaded`` / ``upload_failed``; the uploader sends the statuses,
waits retryInterval between attempts, cancels a running upload for a new request, and
answers triggers (Uploading while busy, else Idle). CSMS side, ``LogMonitor`` follows both
kinds and reports what comes out of order.

Requirement ids: 2.0.1 N01.FR.xx; the 1.6 extension numbers some differently (its
N01.FR.11 is AcceptedCanceled, N01.FR.12 the requestId rule).
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
from ._base import Activity, Emitter, FlowEvent, Outbox, StatusMonitor, build, status_of

UPLOADING = "Uploading"
UPLOADED = "Uploaded"
IDLE = "Idle"
ACCEPTED_CANCELED = "AcceptedCanceled"
#: 1.6 DiagnosticsStatusNotification's only failure.
UPLOAD_FAILED = "UploadFailed"
#: LogStatusNotification's failures (N01.FR.10).
LOG_FAILURES = frozenset(
    {"UploadFailure", "BadMessage", "PermissionDenied", "NotSupportedOperation"}
)


class UploadKind(enum.Enum):
    DIAGNOSTICS = "diagnostics"
    LOG = "log"


_REQUEST = {UploadKind.DIAGNOSTICS: "GetDiagnostics", UploadKind.LOG: "GetLog"}
_NOTIFICATION = {
    UploadKind.DIAGNOSTICS: "DiagnosticsStatusNotification",
    UploadKind.LOG: "LogStatusNotification",
}
_FAILURES = {UploadKind.DIAGNOSTICS: frozenset({UPLOAD_FAILED}), UploadKind.LOG: LOG_FAILURES}


def allowed_next(kind: UploadKind, last: str | None) -> frozenset[str]:
    """The statuses that may follow ``last`` in one upload (empty after a final one).
    Uploading may repeat: a station MAY report it on every retry (N01.FR.10 note)."""
    if last is None:
        return frozenset({UPLOADING})
    if last == UPLOADING:
        return frozenset({UPLOADING, UPLOADED}) | _FAILURES[kind]
    return frozenset()


# --- station side ---------------------------------------------------------------------------


class UploadPhase(enum.Enum):
    IDLE = "Idle"
    #: Accepted (or an attempt is due again): the upload code should start.
    DUE = "Due"
    UPLOADING = "Uploading"
    #: An attempt failed; the next waits for retryInterval.
    RETRY_WAIT = "RetryWait"
    UPLOADED = "Uploaded"
    FAILED = "Failed"
    CANCELED = "Canceled"


_RUNNING = frozenset({UploadPhase.DUE, UploadPhase.UPLOADING, UploadPhase.RETRY_WAIT})

#: The upload code's inputs and the phases each is legal in.
LEGAL_INPUTS: dict[str, frozenset[UploadPhase]] = {
    "upload_started": frozenset({UploadPhase.DUE}),
    "upload_failed": frozenset({UploadPhase.UPLOADING}),
    "uploaded": frozenset({UploadPhase.UPLOADING}),
}


@attrs.frozen(kw_only=True)
class UploadDue(FlowEvent):
    """Upload ``filename`` to ``location`` now (attempt ``attempt`` of ``attempts``)."""

    kind: UploadKind
    request_id: int | None
    location: str
    filename: str
    attempt: int
    attempts: int
    request: Any


@attrs.frozen(kw_only=True)
class UploadCanceled(FlowEvent):
    """A new request replaced this upload: stop it."""

    kind: UploadKind
    request_id: int | None
    request: Any


@attrs.define(eq=False)
class _Upload:
    request: Any
    request_id: int | None
    location: str
    filename: str
    attempts: int
    retry_interval: float
    attempts_made: int = 0
    reported: str | None = None


class _Uploader(Emitter):
    """The shared station-side machinery of both kinds."""

    kind: UploadKind

    def __init__(
        self,
        core: StationCore,
        *,
        file_for: Callable[[Any], str | None] | None = None,
        activity: Activity | None = None,
        default_retries: int = 2,
        default_retry_interval: float = 60.0,
    ) -> None:
        super().__init__()
        if default_retries < 0 or default_retry_interval < 0:
            raise ValueError("default retries and retry interval must be >= 0")
        self.core = core
        self.version = core.version
        self.outbox = Outbox(core)
        # F06.FR.14/15, 1.6 §4.4: this flow answers its status notification's trigger.
        core.serve_triggers(_NOTIFICATION[self.kind])
        self.activity = activity
        self._file_for = file_for or self._default_file
        self.default_retries = default_retries
        self.default_retry_interval = default_retry_interval
        self.phase = UploadPhase.IDLE
        self._upload: _Upload | None = None
        self._due_at: float | None = None

    @property
    def running(self) -> bool:
        return self.phase in _RUNNING

    @property
    def request_id(self) -> int | None:
        return self._upload.request_id if self._upload is not None else None

    def _default_file(self, request: Any) -> str | None:
        raise NotImplementedError

    def _task(self) -> str:
        return f"{self.kind.value}-upload"

    # --- the core's events

    def handle_event(self, event: Event, now: float) -> bool:
        """True when the event was ours (answered or settled here)."""
        if self.outbox.handle_event(event, now):
            return True
        if isinstance(event, RequestReceived) and event.action == _REQUEST[self.kind]:
            self._on_request(event, now)
            return True
        if isinstance(event, TriggerAccepted) and event.action == _NOTIFICATION[self.kind]:
            self._on_trigger(now)
            return True
        return False

    def _on_request(self, event: RequestReceived, now: float) -> None:
        raise NotImplementedError

    def _on_trigger(self, now: float) -> None:
        # F06.FR.14/15, 1.6 §4.4: Uploading while an upload runs, else Idle (no requestId,
        # N01.FR.13).
        upload = self._upload
        if self.running and upload is not None:
            payload = self._payload(UPLOADING, upload.request_id)
        else:
            payload = self._payload(IDLE, None)
        self.outbox.submit_requested(payload, now, supersedes=_NOTIFICATION[self.kind])

    def _begin(
        self,
        request: Any,
        request_id: int | None,
        location: str,
        filename: str,
        now: float,
        attempts_made: int = 0,
    ) -> None:
        retries = request.retries if request.retries is not None else self.default_retries
        interval = request.retry_interval
        self._upload = _Upload(
            request=request,
            request_id=request_id,
            location=location,
            filename=filename,
            attempts=1 + max(0, retries),
            retry_interval=float(interval) if interval is not None else self.default_retry_interval,
            attempts_made=attempts_made,
        )
        if self.activity is not None:
            self.activity.task_started(self._task(), now)
        self._due(now)

    def snapshot(self) -> tuple[Any, str, int] | None:
        """The running upload's request, file name and attempts made: persist them to take
        the upload up again after a reboot (``resume``); None when nothing runs."""
        upload = self._upload
        if upload is None or not self.running:
            return None
        return upload.request, upload.filename, upload.attempts_made

    def resume(self, request: Any, filename: str, attempts_made: int, now: float) -> None:
        """Take up an upload a reboot cut short: its next attempt is due now, with the
        attempts already made counted."""
        if self.running:
            raise LocalProtocolError("an upload is already running")
        if self.kind is UploadKind.DIAGNOSTICS:
            self._begin(request, None, request.location, filename, now, attempts_made)
        else:
            location = request.log.remote_location
            self._begin(request, request.request_id, location, filename, now, attempts_made)

    def _cancel(self, now: float) -> None:
        upload = self._upload
        assert upload is not None
        self._emit(
            UploadCanceled(kind=self.kind, request_id=upload.request_id, request=upload.request)
        )
        self._end(UploadPhase.CANCELED, now)

    def _due(self, now: float) -> None:
        upload = self._upload
        assert upload is not None
        self.phase = UploadPhase.DUE
        self._due_at = None
        self._emit(
            UploadDue(
                kind=self.kind,
                request_id=upload.request_id,
                location=upload.location,
                filename=upload.filename,
                attempt=upload.attempts_made + 1,
                attempts=upload.attempts,
                request=upload.request,
            )
        )

    def _end(self, phase: UploadPhase, now: float) -> None:
        self.phase = phase
        self._due_at = None
        if self.activity is not None:
            self.activity.task_ended(self._task(), now)

    # --- the upload code's inputs

    def _require(self, name: str) -> _Upload:
        upload = self._upload
        if upload is None or not self.running:
            raise LocalProtocolError(
                f"cannot report {name}: no {self.kind.value} upload is running"
            )
        if self.phase not in LEGAL_INPUTS[name]:
            reason = (
                "the retry interval has not passed yet"
                if self.phase is UploadPhase.RETRY_WAIT
                else "not a legal move"
            )
            raise LocalProtocolError(
                f"cannot report {name} while the upload is {self.phase.value}: {reason}"
            )
        return upload

    def upload_started(self, now: float) -> None:
        """An upload attempt began (N01.FR.08)."""
        upload = self._require("upload_started")
        upload.attempts_made += 1
        self.phase = UploadPhase.UPLOADING
        self._notify(UPLOADING, now)

    def uploaded(self, now: float) -> None:
        """The file arrived (N01.FR.09)."""
        self._require("uploaded")
        self._notify(UPLOADED, now)
        self._end(UploadPhase.UPLOADED, now)

    def _failed(self, status: str, now: float) -> None:
        upload = self._require("upload_failed")
        if upload.attempts_made < upload.attempts:
            # The failure is reported after the last attempt only (N01.FR.10 note).
            self.phase = UploadPhase.RETRY_WAIT
            self._due_at = now + upload.retry_interval
            if self._due_at <= now:
                self._due(now)
            return
        self._notify(status, now)
        self._end(UploadPhase.FAILED, now)

    # --- notifications and time

    def _payload(self, status: str, request_id: int | None) -> Any:
        cls = self.core.registry[_NOTIFICATION[self.kind]].request
        if self.kind is UploadKind.DIAGNOSTICS:
            return build(cls, status=status)
        return build(cls, status=status, request_id=request_id)

    def _notify(self, status: str, now: float) -> None:
        upload = self._upload
        assert upload is not None
        upload.reported = status
        self.outbox.submit(self._payload(status, upload.request_id), now)

    def next_deadline(self) -> float | None:
        return self._due_at

    def handle_timer(self, now: float) -> None:
        self.outbox.flush(now)
        if (
            self._due_at is not None
            and now >= self._due_at
            and self.phase is UploadPhase.RETRY_WAIT
        ):
            self._due(now)


class DiagnosticsUploader(_Uploader):
    """1.6 GetDiagnostics, station side. ``file_for(request)`` names the file to upload,
    or None when there is no diagnostics information (the answer then has no file name
    and nothing is uploaded, 1.6 §5.9). A new request replaces a running upload."""

    kind = UploadKind.DIAGNOSTICS

    def __init__(self, core: StationCore, **options: Any) -> None:
        if core.version != "1.6":
            raise LocalProtocolError("GetDiagnostics exists in OCPP 1.6 only; use LogUploader")
        super().__init__(core, **options)

    def _default_file(self, request: Any) -> str | None:
        return "diagnostics.log"

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        filename = self._file_for(request)
        response_cls = self.core.registry["GetDiagnostics"].response
        assert response_cls is not None
        self.core.send_response(event.message_id, response_cls(file_name=filename), now)
        if filename is None:
            return
        if self.running:
            self._cancel(now)
        self._begin(request, None, request.location, filename, now)

    def upload_failed(self, now: float) -> None:
        """This attempt failed; after the last one the upload ends with UploadFailed."""
        self._failed(UPLOAD_FAILED, now)


class LogUploader(_Uploader):
    """GetLog, station side (1.6 security extension, 2.0.1, 2.1). ``file_for(request)``
    names the file, or None when the requested log is not available (Rejected, N01.FR.05).
    A new request cancels a running upload: AcceptedCanceled (N01.FR.12), and in 2.x a
    LogStatusNotification AcceptedCanceled for the cancelled one (N01.FR.20)."""

    kind = UploadKind.LOG

    def _default_file(self, request: Any) -> str | None:
        return f"{request.log_type}-{request.request_id}.log"

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        filename = self._file_for(request)
        response_cls = self.core.registry["GetLog"].response
        assert response_cls is not None
        if filename is None:
            self.core.send_response(event.message_id, build(response_cls, status="Rejected"), now)
            return
        status = "Accepted"  # N01.FR.01
        canceled = self._upload if self.running else None
        if canceled is not None:
            status = ACCEPTED_CANCELED
            self._cancel(now)
        self.core.send_response(
            event.message_id, build(response_cls, status=status, filename=filename), now
        )
        if canceled is not None and self.version != "1.6":
            self.outbox.submit(self._payload(ACCEPTED_CANCELED, canceled.request_id), now)
        self._begin(request, request.request_id, request.log.remote_location, filename, now)

    def upload_failed(self, now: float, status: str = "UploadFailure") -> None:
        """This attempt failed with ``status`` (one of LOG_FAILURES); after the last attempt
        the upload ends with it (N01.FR.10)."""
        if status not in LOG_FAILURES:
            raise LocalProtocolError(
                f"{status!r} is not a log upload failure; use one of {sorted(LOG_FAILURES)}"
            )
        self._failed(status, now)


# --- CSMS side ----------------------------------------------------------------------------------


@attrs.define(eq=False)
class UploadProgress:
    """One upload as the CSMS sees it."""

    kind: UploadKind
    request_id: int | None
    request: Any
    filename: str | None
    statuses: list[str] = attrs.Factory(list)
    canceled: bool = False

    @property
    def status(self) -> str | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def finished(self) -> bool:
        return self.canceled or self.status in (UPLOADED, *_FAILURES[self.kind])


@attrs.frozen(kw_only=True)
class UploadStatusReported(FlowEvent):
    kind: UploadKind
    request_id: int | None
    status: str
    triggered: bool
    progress: UploadProgress | None


class LogMonitor(StatusMonitor):
    """CSMS side of GetDiagnostics and GetLog. Feed it the core's events; it answers the
    status notifications (empty answers) unless ``answer`` is False, and reports each
    status as ``UploadStatusReported`` and each broken rule as ``FlowAnomaly``."""

    requests = ("GetDiagnostics", "GetLog")
    notifications = ("DiagnosticsStatusNotification", "LogStatusNotification")

    def __init__(self, core: CsmsCore, *, answer: bool = True) -> None:
        super().__init__(core, answer=answer)
        #: Log uploads by requestId, oldest first.
        self.logs: dict[int, UploadProgress] = {}
        #: Diagnostics uploads, oldest first (they carry no id).
        self.diagnostics: list[UploadProgress] = []

    def _on_answer(self, event: ResponseReceived) -> None:
        request, response = event.request, event.response
        if event.action == "GetDiagnostics":
            if response.file_name is None:
                return  # nothing to upload (1.6 §5.9)
            for progress in self.diagnostics:
                progress.canceled = progress.canceled or not progress.finished
            self.diagnostics.append(
                UploadProgress(
                    kind=UploadKind.DIAGNOSTICS,
                    request_id=None,
                    request=request,
                    filename=response.file_name,
                )
            )
            return
        status = status_of(response)
        if status not in ("Accepted", ACCEPTED_CANCELED):
            return
        for progress in self.logs.values():
            progress.canceled = progress.canceled or not progress.finished
        self.logs.pop(request.request_id, None)
        self.logs[request.request_id] = UploadProgress(
            kind=UploadKind.LOG,
            request_id=request.request_id,
            request=request,
            filename=response.filename,
        )

    def _on_status(self, event: RequestReceived) -> None:
        kind = UploadKind.DIAGNOSTICS if event.action.startswith("Diagnostics") else UploadKind.LOG
        request = event.request
        status = status_of(request)
        request_id = getattr(request, "request_id", None)
        triggered = event.requested_by is not None
        v16 = self.version == "1.6"
        anomaly = functools.partial(self._emit_anomaly, event, status=status, request_id=request_id)
        tracked = self.diagnostics if kind is UploadKind.DIAGNOSTICS else list(self.logs.values())
        running = [p for p in tracked if not p.finished and p.statuses]
        progress: UploadProgress | None
        if status == IDLE:
            if not triggered:
                anomaly(
                    "1.6 §4.4" if kind is UploadKind.DIAGNOSTICS else "F06.FR.15",
                    "Idle is only sent in answer to a TriggerMessage",
                )
            elif running:
                anomaly(
                    "1.6 §4.4" if kind is UploadKind.DIAGNOSTICS else "F06.FR.14",
                    "Idle while an upload is under way",
                )
            progress = None
        elif kind is UploadKind.DIAGNOSTICS:
            progress = self._diagnostics_for(status, triggered)
            if progress is None:
                anomaly("1.6 §4.4", "status without a GetDiagnostics that named a file")
        elif request_id is None:
            anomaly(
                "1.6 security N01.FR.12" if v16 else "N01.FR.13",
                f"{status} without the upload's requestId",
            )
            progress = running[-1] if running else None
        else:
            progress = self.logs.get(request_id)
            if progress is None:
                anomaly(
                    "1.6 security N01.FR.07" if v16 else "N01.FR.07",
                    "status for an upload the CSMS did not ask for (unknown requestId)",
                )
        if progress is not None and status != IDLE:
            self._judge(kind, progress, status, triggered, anomaly, v16)
        self._emit(
            UploadStatusReported(
                kind=kind,
                request_id=request_id,
                status=status,
                triggered=triggered,
                progress=progress,
            )
        )

    def _diagnostics_for(self, status: str, triggered: bool) -> UploadProgress | None:
        """Diagnostics statuses carry no id: the latest upload's, except that the replaced
        one's last statuses may still arrive after the new answer."""
        if not self.diagnostics:
            return None
        latest = self.diagnostics[-1]
        earlier = [p for p in self.diagnostics[:-1] if p.statuses]
        if (
            earlier
            and not latest.statuses
            and status not in allowed_next(UploadKind.DIAGNOSTICS, None)
        ):
            previous = earlier[-1]
            if status in allowed_next(UploadKind.DIAGNOSTICS, previous.status) or (
                triggered and status == previous.status
            ):
                return previous
        return latest

    def _judge(
        self,
        kind: UploadKind,
        progress: UploadProgress,
        status: str,
        triggered: bool,
        anomaly: Callable[[str, str], None],
        v16: bool,
    ) -> None:
        repeat = triggered and status == progress.status
        legal = status in allowed_next(kind, progress.status)
        if progress.canceled:
            # A cancelled upload may still report where it was, how it failed, or (2.x)
            # AcceptedCanceled (N01.FR.20).
            legal = legal or status in _FAILURES[kind] or (status == ACCEPTED_CANCELED and not v16)
        elif status == ACCEPTED_CANCELED and not v16 and not progress.statuses:
            legal = True  # sent with the new request's id by some stations
        if not (repeat or legal):
            previous = progress.status or "the start"
            rule = "1.6 §4.4" if kind is UploadKind.DIAGNOSTICS else "N01.FR.08-10"
            anomaly(rule, f"{status} out of order after {previous}")
        if not repeat:
            progress.statuses.append(status)
