"""A simulated charging station: the ``ChargingStation`` facade with pretend hardware,
without IO.

The hardware is pretend: single-phase 32 A connectors that charge at the limit in force
(7.36 kW without a charging profile, less when smart charging limits them), a driver who
plugs in when a remote start is accepted and leaves when the transaction ends, a meter
that counts the energy at that power. Downloads, signature checks and uploads are pretend
too (each takes a second and succeeds) unless the IO layer gives ``transfers``: then they
are done for real in the background and their outcome comes back through ``inbox`` (the
command's glue in ``ocpp_sansio.cli.transfers`` does that). What survives a reboot lives
in ``store`` (in memory unless given one, e.g. ``open_station_store``'s SQLite file, which
also survives the process being killed): ``rebooted()`` powers the same station up again
on it, and a new process powers up on the same file.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ocpp_sansio.charging_station import (
    SUPPORTED_TRIGGERS,
    ChargingLimit,
    ChargingStation,
    FirmwareJob,
    RebootRequested,
    StationInfo,
    StationStore,
    UploadJob,
)
from ocpp_sansio.flows._base import WallClock
from ocpp_sansio.smart_charging import EvseLimits, SmartChargingConfig
from ocpp_sansio.store import MemoryStationStore

__all__ = [
    "FIRMWARE",
    "MODEL",
    "SUPPORTED_TRIGGERS",
    "VENDOR",
    "FrameObserver",
    "RebootRequested",
    "SimulatedStation",
    "Transfers",
]

#: Simulated charging power without a limit (W): 32 A on one phase at 230 V; and how long
#: pretend transfers and installs take (s).
MAX_CURRENT_A = 32.0
POWER_W = 7360.0
TRANSFER_SECONDS = 1.0
#: How often finished background work is collected (s).
INBOX_POLL_SECONDS = 0.2
_VOLTAGE = 230.0

VENDOR = "ocpp-sansio"
MODEL = "Simulator"
FIRMWARE = "sim-1.0"

FrameObserver = Callable[[str, str, float], None]
"""``observer(direction, text, now)``: ``direction`` is "out" (to the CSMS) or "in"."""

#: Finished background work: ``result(now)`` reports its outcome to the station.
Inbox = deque[Callable[[float], None]]


class Transfers(Protocol):
    """Real transfers for the simulator, done by the IO layer off the station's loop.
    Each ``start_*`` begins the work and returns at once; when it ends it appends
    ``report(status)`` (as a callable of ``now``) to ``inbox``."""

    def check_certificate(self, signing_certificate: str) -> str | None:
        """None, "InvalidCertificate" or "RevokedCertificate" (L01.FR.21/22)."""

    def start_download(
        self, job: FirmwareJob, inbox: Inbox, report: Callable[[str, float], None]
    ) -> None:
        """Download (and for a signed update verify) ``job``; report "Downloaded" then
        "SignatureVerified" / "InvalidSignature", or "DownloadFailed"."""

    def start_upload(
        self, job: UploadJob, inbox: Inbox, report: Callable[[str, float], None]
    ) -> None:
        """Upload ``job.filename``; report "Uploaded" or a failure status."""


#: Where the pretend meters keep their registers in the station's store: like a real
#: meter's, they survive a reboot and a kill (a restart resumes from the last reading).
METERS_KEY = "simulator/meters"


class _Meter:
    """Energy counted at the power drawn since the last change."""

    def __init__(self, energy_wh: float = 0.0) -> None:
        self.energy_wh = energy_wh
        self.since: float | None = None
        self.power_w = POWER_W

    def read(self, now: float) -> float:
        if self.since is None:
            return self.energy_wh
        return self.energy_wh + (now - self.since) * self.power_w / 3600.0

    def draw(self, power_w: float, now: float) -> None:
        """From ``now`` on the EV draws ``power_w``."""
        if self.since is not None:
            self.energy_wh = self.read(now)
            self.since = now
        self.power_w = power_w


class _PretendHardware:
    """The simulator's ``StationApplication``."""

    def __init__(self, simulator: SimulatedStation) -> None:
        self.sim = simulator
        saved = simulator.store.load(METERS_KEY) or {}
        self.meters = {int(evse_id): _Meter(float(wh)) for evse_id, wh in saved.items()}

    def _meter(self, evse_id: int) -> _Meter:
        return self.meters.setdefault(evse_id, _Meter())

    @property
    def station(self) -> ChargingStation:
        return self.sim.station

    def start_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        meter = self._meter(evse_id)
        if meter.since is None:
            meter.since = now

    def stop_energy(self, evse_id: int, connector_id: int, now: float) -> None:
        meter = self._meter(evse_id)
        meter.energy_wh = meter.read(now)
        meter.since = None
        if self.station.evses[evse_id].transaction is None:
            # The pretend driver leaves once the transaction is over.
            self.station.on_session_finished(evse_id, connector_id, now)

    def remote_start(self, evse_id: int, id_token: Any, now: float) -> None:
        # The pretend driver is at the station and plugs in.
        if not self.station.evses[evse_id].plugged:
            self.station.on_session_started(evse_id, 1, now)

    def unlock(self, evse_id: int, connector_id: int, now: float) -> bool:
        return True

    def reset(self, evse_id: int | None, now: float) -> None:
        pass

    def set_availability(
        self, evse_id: int, connector_id: int | None, operative: bool, now: float
    ) -> None:
        pass

    def set_limit(self, evse_id: int, limit: ChargingLimit, now: float) -> None:
        """The EV draws as much as the limit in force allows (K01: the composite's
        current period), never more than the connector gives."""
        if evse_id == 0:
            return  # the grid connection's limit is already in every EVSE's
        allowed = POWER_W if limit.watts is None else min(POWER_W, limit.watts)
        self._meter(evse_id).draw(max(0.0, allowed), now)

    def read_meter(self, evse_id: int, now: float) -> Mapping[str, float] | None:
        meter = self._meter(evse_id)
        power = meter.power_w if meter.since is not None else 0.0
        registers = {str(n): round(m.read(now), 1) for n, m in sorted(self.meters.items())}
        self.sim.store.save(METERS_KEY, registers)  # committed with what reports the reading
        return {
            "Energy.Active.Import.Register": registers[str(evse_id)],
            "Power.Active.Import": power,
            "Current.Import": round(power / _VOLTAGE, 1),
            "Voltage": _VOLTAGE,
        }

    def check_firmware_certificate(self, signing_certificate: str, now: float) -> str | None:
        transfers = self.sim.transfers
        return None if transfers is None else transfers.check_certificate(signing_certificate)

    def download_firmware(self, job: FirmwareJob, now: float) -> None:
        station = self.station
        station.on_firmware_update_status_notification(job.request_id, "Downloading", now)
        report = self._firmware_report(job.request_id)
        transfers = self.sim.transfers
        if transfers is None:
            statuses = ["Downloaded"] + (["SignatureVerified"] if job.signature else [])

            def done(when: float) -> None:
                for status in statuses:
                    report(status, when)

            station.schedule(TRANSFER_SECONDS, now, "firmware", done)
            return
        self.sim._expect_work(now)
        transfers.start_download(job, self.sim.inbox, report)

    def _firmware_report(self, request_id: int | None) -> Callable[[str, float], None]:
        def report(status: str, now: float) -> None:
            self.station.on_firmware_update_status_notification(request_id, status, now)

        return report

    def install_firmware(self, request_id: int | None, now: float) -> None:
        station = self.station
        station.on_firmware_update_status_notification(request_id, "Installing", now)

        def installed(when: float) -> None:
            self.sim.firmware_version = f"{FIRMWARE}+update"
            station.on_firmware_update_status_notification(
                request_id, "Installed", when, reboot=True
            )

        station.schedule(TRANSFER_SECONDS, now, "firmware", installed)

    def upload_log(self, job: UploadJob, now: float) -> None:
        station = self.station
        station.on_log_status_notification("Uploading", job.request_id, now)

        def report(status: str, when: float) -> None:
            station.on_log_status_notification(status, job.request_id, when)

        transfers = self.sim.transfers
        if transfers is None:
            station.schedule(
                TRANSFER_SECONDS, now, f"upload-{job.kind}", lambda when: report("Uploaded", when)
            )
            return
        self.sim._expect_work(now)
        transfers.start_upload(job, self.sim.inbox, report)


class SimulatedStation:
    """One simulated charging station: ``core`` goes to an adapter (with ``flows``) or
    the in-memory pair.

    ``connectors`` counts 1.6 connectors 1..N, or 2.x EVSEs 1..N with one connector (id 1)
    each. ``wall_clock(now)`` gives the wall-clock time of core time ``now``;
    ``on_frame(direction, text, now)`` sees every frame (``now`` -1 when a frame is
    collected for sending). ``boot_reason`` is the 2.x reason of this power-up (default:
    what the previous life left in ``store``). ``store``: where the station keeps its state
    (default: in memory, gone with the process).
    """

    def __init__(
        self,
        identity: str,
        version: str,
        *,
        connectors: int = 1,
        wall_clock: WallClock | None = None,
        rng: random.Random | None = None,
        id_generator: Callable[[], str] | None = None,
        on_frame: FrameObserver | None = None,
        boot_reason: str | None = None,
        firmware_version: str = FIRMWARE,
        store: StationStore | None = None,
        transfers: Transfers | None = None,
    ) -> None:
        if connectors < 1:
            raise ValueError("a station has at least one connector")
        self.identity = identity
        self.version = version
        self.firmware_version = firmware_version
        self.store: StationStore = (
            store if store is not None else MemoryStationStore(identity, version)
        )
        self.transfers = transfers
        self.inbox: Inbox = deque()
        self._work_expected = 0
        self._args = {
            "connectors": connectors,
            "wall_clock": wall_clock,
            "rng": rng,
            "id_generator": id_generator,
            "on_frame": on_frame,
        }
        self.hardware = _PretendHardware(self)
        self.station = ChargingStation(
            version,
            application=self.hardware,
            info=StationInfo(
                vendor=VENDOR,
                model=MODEL,
                serial_number=identity[:25],
                firmware_version=firmware_version,
            ),
            evses=connectors,
            max_power_w=POWER_W,
            smart_charging=SmartChargingConfig(
                evses={
                    n: EvseLimits(max_current=MAX_CURRENT_A, phases=1)
                    for n in range(1, connectors + 1)
                },
                nominal_voltage=_VOLTAGE,
            ),
            store=self.store,
            wall_clock=wall_clock,
            rng=rng or random.Random(),
            id_generator=id_generator,
            on_frame=on_frame,
            boot_reason=boot_reason,
        )
        self.core = self.station.core

    # --- what the runner uses

    @property
    def flows(self) -> Callable[[Any], list[Any]]:
        """For the adapter's ``flows=``: timers that run between connections."""
        return self.station.flows

    @property
    def accepted_at(self) -> float | None:
        return self.station.accepted_at

    @property
    def first_connected_at(self) -> float | None:
        return self.station.first_connected_at

    @property
    def latencies(self) -> list[float]:
        return self.station.latencies

    @property
    def connectors(self) -> dict[int, Any]:
        return self.station.evses

    @property
    def availability(self) -> Any:
        return self.station.availability

    @property
    def settings(self) -> Any:
        return self.station.settings

    def rebooted(self) -> SimulatedStation:
        """The same station after its reboot: what ``store`` kept (the transaction messages
        not yet delivered included) survives; the connection does not."""
        self.station.core.commit()
        return SimulatedStation(
            self.identity,
            self.version,
            firmware_version=self.firmware_version,
            store=self.store,
            transfers=self.transfers,
            **self._args,  # type: ignore[arg-type]
        )

    def status_of(self, connector_id: int) -> str:
        """The status a StatusNotification reports now for a connector (1.6: 0 too)."""
        return self.station.status_of(connector_id)

    # --- background work

    def _expect_work(self, now: float) -> None:
        self._work_expected += 1
        if self._work_expected == 1:
            self.station.schedule(INBOX_POLL_SECONDS, now, "inbox", self._collect)

    def _collect(self, now: float) -> None:
        while self.inbox:
            self._work_expected -= 1
            self.inbox.popleft()(now)
        if self._work_expected > 0:
            self.station.schedule(INBOX_POLL_SECONDS, now, "inbox", self._collect)
