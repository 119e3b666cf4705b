"""What the flows keep across a restart through ``StationKeeper`` / ``CsmsKeeper``: each
flow's state is committed with the core's writes and given back to the next power-up's
flow (availability, firmware, reset, reservations, uploads, authorization list and cache,
configuration and device-model values, transactions; the CSMS's open transactions)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from _corekit import boot_request
from _flowkit import Rig, wall

from ocpp_sansio.config import StationConfig
from ocpp_sansio.csms import CsmsCore
from ocpp_sansio.flows import (
    Activity,
    Authorization,
    AuthorizationSource,
    Availability,
    Configuration16,
    CsmsTransactions16,
    DeviceModel,
    FirmwarePhase,
    FirmwareUpdater,
    LogUploader,
    ReservationEnded,
    Reservations,
    Reset,
    ResetDue,
    TransactionEvents,
    UploadDue,
    Verdict,
    standard_variables,
)
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.configuration import default_configuration
from ocpp_sansio.station import StationCore
from ocpp_sansio.store import MemoryCsmsStore, MemoryStationStore
from ocpp_sansio.store.keeper import CsmsKeeper, StationKeeper

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")


class StoredRig(Rig):
    """A Rig whose station keeps its state in a memory store and can be restarted:
    ``restart()`` drops the core and the flows and builds a new core on what was
    committed; the test builds its flows again with ``keeper``."""

    def __init__(self, version: str, **options: Any) -> None:
        self.store: Any = MemoryStationStore("CS1", version)
        super().__init__(version, **options)
        self.keeper = StationKeeper(self.store)

    def _new_station(self, boot: Any) -> StationCore:
        return StationCore(
            self.version,
            boot if boot is not None else boot_request(self.version),
            config=StationConfig(connectors=self.connectors),
            rng=random.Random(1),
            store=self.store,
        )

    def restart(self, *, connect: bool = True) -> None:
        self.flush()
        self.station.commit()  # (taking frames commits; offline nothing takes them)
        if self.pair.connected:
            self.pair.disconnect()
        self.store = self.store.reopen()
        self.pair.station = self._new_station(None)
        self.station_flows.clear()
        self.keeper = StationKeeper(self.store)
        if connect:
            self.pair.connect()


def token(rig: Rig, value: str) -> Any:
    if rig.version == "1.6":
        return value
    return build(rig.m.IdToken, id_token=value, type="ISO14443")


# --- availability --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_g03_fr_08_g04_fr_09_inoperative_survives_a_restart(version: str) -> None:
    rig = StoredRig(version, connectors=2)
    flow = Availability(rig.station, Activity(), restore=rig.keeper.availability())
    rig.keeper.keep_availability(flow)
    rig.station_flows.append(flow)
    m = rig.m
    if version == "1.6":
        request = build(m.ChangeAvailabilityRequest, connector_id=2, type="Inoperative")
    else:
        request = build(
            m.ChangeAvailabilityRequest, operational_status="Inoperative", evse=m.EVSE(id=2)
        )
    rig.csms_sends(request)
    assert not flow.is_operative(2, None if version == "1.6" else 1)

    rig.restart()
    again = Availability(rig.station, Activity(), restore=rig.keeper.availability())
    rig.keeper.keep_availability(again)
    assert not again.is_operative(2, None if version == "1.6" else 1)
    assert again.is_operative(1, None if version == "1.6" else 1)


# --- firmware ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_a_firmware_update_in_progress_resumes_after_a_restart(version: str) -> None:
    rig = StoredRig(version)
    updater = FirmwareUpdater(rig.station, resume=rig.keeper.firmware())
    rig.keeper.keep_firmware(updater)
    rig.station_flows.append(updater)
    m = rig.m
    firmware = m.Firmware(location="https://fw.example/1.bin", retrieve_date_time=wall(rig.now))
    rig.csms_sends(m.UpdateFirmwareRequest(request_id=9, firmware=firmware))
    updater.download_started(rig.now)
    rig.flush()

    rig.restart()
    saved = rig.keeper.firmware()
    assert saved is not None and saved.phase is FirmwarePhase.DOWNLOADING
    again = FirmwareUpdater(rig.station, resume=saved)
    rig.keeper.keep_firmware(again)
    assert again.phase is FirmwarePhase.DOWNLOAD_DUE and again.request_id == 9
    again.download_started(rig.now)  # the firmware code starts over
    assert again.phase is FirmwarePhase.DOWNLOADING


@pytest.mark.parametrize("version", V2)
def test_an_install_reboot_is_known_at_the_next_start(version: str) -> None:
    rig = StoredRig(version)
    updater = FirmwareUpdater(rig.station)
    rig.keeper.keep_firmware(updater)
    rig.station_flows.append(updater)
    m = rig.m
    firmware = m.Firmware(location="https://fw.example/1.bin", retrieve_date_time=wall(rig.now))
    rig.csms_sends(m.UpdateFirmwareRequest(request_id=3, firmware=firmware))
    for step in ("download_started", "downloaded", "install_started", "install_rebooting"):
        getattr(updater, step)(rig.now)
    rig.restart(connect=False)
    saved = rig.keeper.firmware()
    assert (
        saved is not None and saved.phase is FirmwarePhase.INSTALL_REBOOTING
    )  # reason FirmwareUpdate


# --- reset ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_b12_fr_01_a_scheduled_on_idle_reset_is_known_at_the_next_start(version: str) -> None:
    """The restart ends the transaction the reset waited for and reboots: the reset is
    carried out, and the next boot knows it was one (ScheduledReset)."""
    rig = StoredRig(version)
    activity = Activity()
    reset = Reset(rig.station, activity)
    rig.keeper.keep_reset(reset)
    rig.station_flows.append(reset)
    activity.transaction_started("T1", 1, rig.now)
    rig.csms_sends(build(rig.m.ResetRequest, type="OnIdle"))
    assert reset.pending == ("OnIdle", None)

    rig.restart()
    saved = rig.keeper.reset()
    assert saved is not None and (saved.pending, saved.rebooting) == (("OnIdle", None), None)
    again = Reset(rig.station, Activity())
    rig.keeper.keep_reset(again)
    assert again.pending is None
    rig.station.commit()
    assert rig.keeper.reset() is None  # only this boot follows it


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kind_of_reset_being_carried_out_names_the_next_boot(version: str) -> None:
    rig = StoredRig(version)
    reset = Reset(rig.station, Activity())
    rig.keeper.keep_reset(reset)
    rig.station_flows.append(reset)
    kind = "Hard" if version == "1.6" else "Immediate"
    rig.csms_sends(build(rig.m.ResetRequest, type=kind))
    assert [e.kind for e in reset.events() if isinstance(e, ResetDue)] == [kind]
    rig.restart(connect=False)
    saved = rig.keeper.reset()
    assert saved is not None and (saved.pending, saved.rebooting) == (None, kind)
    again = Reset(rig.station, Activity())
    rig.keeper.keep_reset(again)
    assert again.pending is None
    rig.station.commit()
    assert rig.keeper.reset() is None  # carried out: the boot after the next is not its


# --- reservations --------------------------------------------------------------------------------


def reserve_now(rig: Rig, reservation_id: int, target: int, seconds: float) -> Any:
    m = rig.m
    expiry = wall(rig.now) + timedelta(seconds=seconds)
    if rig.version == "1.6":
        return m.ReserveNowRequest(
            connector_id=target, expiry_date=expiry, id_tag="TAG1", reservation_id=reservation_id
        )
    return m.ReserveNowRequest(
        id=reservation_id, expiry_date_time=expiry, id_token=token(rig, "TAG1"), evse_id=target
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_reservations_survive_a_restart_and_expire_on_time(version: str) -> None:
    rig = StoredRig(version, connectors=2)
    flow = Reservations(rig.station, connectors=2)
    rig.keeper.keep_reservations(flow, rig.now)
    rig.station_flows.append(flow)
    rig.csms_sends(reserve_now(rig, 7, 1, seconds=600))
    rig.csms_sends(reserve_now(rig, 8, 2, seconds=60))
    assert sorted(flow.reservations) == [7, 8]

    rig.pair.clock.now += 100  # the station is down for 100 s
    rig.restart()
    again = Reservations(rig.station, connectors=2)
    rig.keeper.keep_reservations(again, rig.now)
    rig.station_flows.append(again)
    assert again.reserved_for(1) is not None and again.reserved_for(1).reservation_id == 7
    assert again.may_charge(1, token(rig, "TAG1")) and not again.may_charge(1, token(rig, "X"))
    rig.advance(0)  # 8 expired while the station was down: it ends at the first timer
    assert [(e.reservation.reservation_id, e.reason) for e in again.events()] == [(8, "Expired")]
    rig.advance(501)
    assert [
        (e.reservation.reservation_id, e.reason)
        for e in again.events()
        if isinstance(e, ReservationEnded)
    ] == [(7, "Expired")]


# --- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_log_upload_in_progress_is_due_again_after_a_restart(version: str) -> None:
    rig = StoredRig(version)
    uploader = LogUploader(rig.station)
    rig.keeper.keep_uploads(uploader, rig.now)
    rig.station_flows.append(uploader)
    m = rig.m
    request = build(
        m.GetLogRequest,
        log=m.LogParameters(remote_location="ftp://logs.example/"),
        log_type="DiagnosticsLog",
        request_id=4,
        retries=1,
    )
    rig.csms_sends(request)
    uploader.upload_started(rig.now)
    rig.restart()
    again = LogUploader(rig.station)
    rig.keeper.keep_uploads(again, rig.now)
    (due,) = [e for e in again.events() if isinstance(e, UploadDue)]
    assert (due.request_id, due.attempt, due.attempts) == (4, 2, 2)
    assert again.running


# --- authorization -------------------------------------------------------------------------------


class Settings(dict[str, str]):
    def setting(self, name: str) -> str | None:
        return self.get(name)


def send_local_list(rig: Rig, version_number: int, tags: list[str]) -> None:
    m = rig.m
    if rig.version == "1.6":
        entries = [
            m.AuthorizationData(id_tag=t, id_tag_info=build(m.IdTagInfo, status="Accepted"))
            for t in tags
        ]
        request = build(
            m.SendLocalListRequest,
            list_version=version_number,
            update_type="Full",
            local_authorization_list=entries,
        )
    else:
        entries = [
            m.AuthorizationData(
                id_token=token(rig, t), id_token_info=build(m.IdTokenInfo, status="Accepted")
            )
            for t in tags
        ]
        request = build(
            m.SendLocalListRequest,
            version_number=version_number,
            update_type="Full",
            local_authorization_list=entries,
        )
    rig.csms_sends(request)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_local_list_and_its_version_survive_a_restart(version: str) -> None:
    rig = StoredRig(version)
    settings = Settings(LocalAuthListEnabled="true", **{"LocalAuthListCtrlr.Enabled": "true"})
    auth = Authorization(rig.station, settings=settings, local_list=rig.keeper.local_list())
    rig.station_flows.append(auth)
    send_local_list(rig, 5, ["A", "B"])
    send_local_list(rig, 6, ["C"])
    rig.restart(connect=False)
    again = Authorization(rig.station, settings=settings, local_list=rig.keeper.local_list())
    assert again.local_list is not None and again.local_list.list_version() == 6
    assert again.local_list.count() == 1
    decision = again.lookup(token(rig, "c"), rig.now)  # offline, case-insensitive
    assert (decision.verdict, decision.source) == (
        Verdict.ACCEPTED,
        AuthorizationSource.LOCAL_LIST,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_c10_fr_02_the_authorization_cache_survives_a_restart(version: str) -> None:
    rig = StoredRig(version)
    auth = Authorization(rig.station, cache=rig.keeper.cache(rig.now))
    rig.station_flows.append(auth)
    auth.authorize(token(rig, "TAG9"), rig.now)
    rig.flush()
    rig.pair.clock.now += 50
    rig.restart(connect=False)
    cache = rig.keeper.cache(rig.now)
    again = Authorization(rig.station, cache=cache)
    decision = again.lookup(token(rig, "TAG9"), rig.now)  # offline
    assert (decision.verdict, decision.source) == (Verdict.ACCEPTED, AuthorizationSource.CACHE)
    (entry,) = cache._entries.values()
    assert entry.stored_at == pytest.approx(rig.now - 50)  # wall time, read back


@pytest.mark.parametrize("version", VERSIONS)
def test_c10_fr_08_a_use_of_a_cache_entry_survives_a_restart(version: str) -> None:
    """AuthCacheCtrlr.LifeTime counts from the last use: a use before the restart moves it
    on after the restart too."""
    rig = StoredRig(version)
    auth = Authorization(rig.station, cache=rig.keeper.cache(rig.now))
    rig.station_flows.append(auth)
    auth.authorize(token(rig, "TAG9"), rig.now)
    rig.flush()
    rig.pair.disconnect()
    rig.pair.clock.now += 40
    used_at = rig.now
    assert auth.lookup(token(rig, "TAG9"), rig.now).source is AuthorizationSource.CACHE
    rig.pair.clock.now += 10
    rig.restart(connect=False)
    (entry,) = rig.keeper.cache(rig.now)._entries.values()
    assert entry.last_used == pytest.approx(used_at)
    assert entry.stored_at == pytest.approx(used_at - 40)


def test_a_full_cache_evicts_in_the_store_too() -> None:
    rig = StoredRig("1.6")
    auth = Authorization(rig.station, cache=rig.keeper.cache(rig.now, capacity=2))
    rig.station_flows.append(auth)
    for tag in ("A", "B", "C"):
        auth.authorize(tag, rig.now)
        rig.flush()
        rig.pair.clock.now += 1
    rig.restart(connect=False)
    assert sorted(rig.keeper.cache(rig.now, capacity=2)._entries) == ["b", "c"]


# --- configuration -------------------------------------------------------------------------------


def test_1_6_configuration_changed_by_the_csms_survives_a_restart() -> None:
    rig = StoredRig("1.6")
    defaults = default_configuration(connectors=1)
    config = Configuration16(rig.station, rig.keeper.configuration(defaults))
    rig.station_flows.append(config)
    rig.csms_sends(rig.m.ChangeConfigurationRequest(key="HeartbeatInterval", value="123"))
    rig.restart(connect=False)
    store = rig.keeper.configuration(defaults)
    assert store.read("HeartbeatInterval") == "123"
    assert store.read("MeterValueSampleInterval") == defaults["MeterValueSampleInterval"]


@pytest.mark.parametrize("version", V2)
def test_device_model_values_set_by_the_csms_survive_a_restart(version: str) -> None:
    rig = StoredRig(version)
    model = DeviceModel(rig.station, rig.keeper.device_model(standard_variables()))
    rig.station_flows.append(model)
    m = rig.m
    item = m.SetVariableData(
        attribute_value="77",
        component=m.Component(name="OCPPCommCtrlr"),
        variable=m.Variable(name="HeartbeatInterval"),
    )
    rig.csms_sends(m.SetVariablesRequest(set_variable_data=[item]))
    rig.restart(connect=False)
    again = DeviceModel(rig.station, rig.keeper.device_model(standard_variables()))
    assert again.setting("OCPPCommCtrlr.HeartbeatInterval") == "77"
    assert again.setting("OCPPCommCtrlr.OfflineThreshold") == "60"


# --- transactions --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", V2)
def test_e04_fr_04_seq_no_continues_after_the_held_events_even_from_an_old_snapshot(
    version: str,
) -> None:
    """A snapshot older than the held messages (kept by hand, not by the keeper): seqNo
    still continues after the highest held one, never repeating it."""
    rig = StoredRig(version, connect=False)
    flow = TransactionEvents(rig.station, transaction_ids=lambda: "T1")
    tx = flow.start(trigger_reason="Authorized", now=rig.now, evse_id=1)
    old = flow.snapshot()
    for _ in range(3):
        flow.update(tx, trigger_reason="MeterValuePeriodic", now=rig.now)
    rig.restart(connect=False)
    again = TransactionEvents(rig.station, transaction_ids=lambda: "T2")
    (resumed,) = again.restore(old, rig.now)
    assert resumed.next_seq_no == 4
    again.end(resumed, trigger_reason="AbnormalCondition", now=rig.now, stopped_reason="PowerLoss")
    rig.connect()
    assert [c["seqNo"] for c in rig.calls("TransactionEvent")] == [0, 1, 2, 3, 4]


# --- the CSMS ------------------------------------------------------------------------------------


def test_1_6_transaction_ids_and_open_transactions_survive_a_csms_restart() -> None:
    rig = Rig("1.6", connectors=2, connect=False)
    store: Any = MemoryCsmsStore()

    def run_csms() -> CsmsTransactions16:
        """A (re)started CSMS: its core and flow from what its store committed."""
        station_store = store.station("CS1")
        rig.pair.csms = CsmsCore("1.6", "CS1", store=station_store)
        keeper = CsmsKeeper(station_store)
        flow = CsmsTransactions16(rig.csms, transaction_ids=keeper.transaction_ids())
        keeper.keep_transactions(flow)
        rig.csms_flows[:] = [flow]
        return flow

    def start(connector: int, meter: int) -> Any:
        return rig.m.StartTransactionRequest(
            connector_id=connector, id_tag="T", meter_start=meter, timestamp=wall(rig.now)
        )

    flow = run_csms()
    rig.connect()
    rig.station.send_request(start(1, 5), rig.now)
    rig.flush()
    assert list(flow.transactions) == [1]
    rig.disconnect()

    store = store.reopen()
    flow = run_csms()
    rig.connect()  # the station resumes without a boot (B04)
    rig.station.send_request(start(1, 5), rig.now)  # repeated under a new message id
    rig.station.send_request(start(2, 9), rig.now)
    rig.flush()
    assert sorted(flow.transactions) == [1, 2]  # the same id again, then a new one
    assert [str(e.error_code) for e in rig.station_seen if hasattr(e, "error_code")] == []
