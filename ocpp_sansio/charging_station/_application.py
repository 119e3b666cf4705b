"""What the charging station asks of its hardware: one typed interface.

The facade calls these from inside its own methods (sans-IO: each gets ``now`` and must
return quickly). Long work (a download, an upload, an install) starts here and reports
its progress back through the facade's ``on_*`` methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs


@attrs.frozen(kw_only=True)
class FirmwareJob:
    """A firmware download to do (L01, L02; 1.6 §5.19). ``request_id`` is None for 1.6
    plain UpdateFirmware. Signed updates carry the signing certificate (PEM) and the
    signature (base64) to check after the download (L01.FR.03/04)."""

    request_id: int | None
    location: str
    attempt: int
    attempts: int
    signing_certificate: str | None = None
    signature: str | None = None


@attrs.frozen(kw_only=True)
class UploadJob:
    """A log (GetLog) or 1.6 diagnostics (GetDiagnostics) upload to do (N01)."""

    kind: str
    request_id: int | None
    location: str
    filename: str
    attempt: int
    attempts: int


@attrs.frozen(kw_only=True)
class ChargingLimit:
    """What an EVSE (0: the grid connection) may draw now, in both units: the lowest of the
    charging profiles, external limits and the hardware's own limits (the composite
    schedule's current period). ``number_phases`` / ``phase_to_use``: as the period says
    (None: not restricted); ``min_amps`` / ``min_watts``: the transaction profile's
    minChargingRate. ``next_change`` (wall clock) / ``next_change_at`` (core time): when
    the limit changes next by itself (None: not within 8 days); ``set_limit`` is called
    again then."""

    amps: float | None = None
    watts: float | None = None
    number_phases: int | None = None
    phase_to_use: int | None = None
    min_amps: float | None = None
    min_watts: float | None = None
    next_change: datetime | None = None
    next_change_at: float | None = None


class StationApplication(Protocol):
    """The hardware behind a ``ChargingStation``."""

    def start_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        """Close the power path: the EV may charge (a transaction is authorized and the
        cable plugged)."""

    def stop_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        """Open the power path (transaction ended, deauthorized, suspended)."""

    def remote_start(self, evse_id: int, id_token: Any, now: float) -> None:
        """A remote start for ``id_token`` was accepted on ``evse_id`` (F01, F02): tell the
        driver to plug in. The facade authorizes it and starts the transaction at the
        TxStartPoint."""

    def unlock(self, evse_id: int, connector_id: int, now: float) -> bool:
        """Release the cable (F05); True when it unlocked."""

    def reset(self, evse_id: int | None, now: float) -> None:
        """Reset one EVSE, or (None) prepare the whole station for a reboot: the facade
        then emits ``RebootRequested`` for the IO layer."""

    def set_availability(
        self, evse_id: int, connector_id: int | None, operative: bool, now: float
    ) -> None:
        """The connector (or EVSE) became Operative or Inoperative (G03, G04)."""

    def set_limit(self, evse_id: int, limit: ChargingLimit, now: float) -> None:
        """Apply the limit in force on ``evse_id`` (0: the grid connection). Called at
        power-up for every EVSE and whenever the limit changes: a profile set or cleared, a
        period boundary, a transaction starting or ending, an external limit (K01, K11-K13).
        """

    def read_meter(self, evse_id: int, now: float) -> Mapping[str, float] | None:
        """A fresh reading of the EVSE's meter (0: the station's), measurand -> value
        (Energy.Active.Import.Register in Wh, Power.Active.Import in W …); None: use
        what ``on_meter_value`` reported last."""

    def check_firmware_certificate(self, signing_certificate: str, now: float) -> str | None:
        """Judge a signed update's signing certificate before accepting it (L01.FR.21):
        None when valid, or "InvalidCertificate" / "RevokedCertificate" (L01.FR.22)."""

    def download_firmware(self, job: FirmwareJob, now: float) -> None:
        """Start a download attempt; report through ``on_firmware_update_status_notification``
        (Downloading, Downloaded or DownloadFailed, then SignatureVerified or
        InvalidSignature for a signed update)."""

    def install_firmware(self, request_id: int | None, now: float) -> None:
        """Install the downloaded firmware; report Installing, InstallRebooting, Installed
        or InstallationFailed."""

    def upload_log(self, job: UploadJob, now: float) -> None:
        """Start an upload attempt; report through ``on_log_status_notification``
        (Uploading, then Uploaded or a failure)."""
