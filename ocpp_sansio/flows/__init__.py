"""Protocol flows on top of the station and CSMS cores: pure logic, time and randomness
passed in, each fed the core's events through ``handle_event(event, now)``."""

from ._base import Activity, FlowAnomaly, Outbox, posix_clock
from .authorization import (
    Authorization,
    AuthorizationDecided,
    InMemoryCache,
    InMemoryLocalList,
    LocalListSync,
    Verdict,
)
from .availability import (
    Availability,
    AvailabilityChanged,
    AvailabilityMonitor,
    AvailabilitySnapshot,
    Reset,
    ResetAccepted,
    ResetDue,
)
from .configuration import Configuration16, ConfigurationChanged, InMemoryConfiguration
from .data_transfer import DataTransferReply, DataTransferRouter
from .device_model import DeviceModel, InMemoryDeviceModel, ReportCollector, standard_variables
from .firmware import (
    FirmwareDownloadDue,
    FirmwareInstallDue,
    FirmwareMonitor,
    FirmwareSnapshot,
    FirmwareUpdateCanceled,
    FirmwareUpdater,
)
from .host import FlowFactory, FlowHost
from .logs import DiagnosticsUploader, LogMonitor, LogUploader, UploadCanceled, UploadDue
from .metering import MeterSampleDue, MeterSchedule
from .remote import (
    RemoteControl,
    RemoteMonitor,
    RemoteStartAccepted,
    RemoteStopAccepted,
    UnlockRequested,
)
from .reservations import CsmsReservations, Reservations
from .transactions import (
    CsmsTransactionEvents,
    CsmsTransactions16,
    TransactionEvents,
    Transactions16,
    uuid_transaction_ids,
)

__all__ = [
    "Activity",
    "Authorization",
    "AuthorizationDecided",
    "Availability",
    "AvailabilityChanged",
    "AvailabilityMonitor",
    "AvailabilitySnapshot",
    "Configuration16",
    "ConfigurationChanged",
    "CsmsReservations",
    "CsmsTransactionEvents",
    "CsmsTransactions16",
    "DataTransferReply",
    "DataTransferRouter",
    "DeviceModel",
    "DiagnosticsUploader",
    "FirmwareDownloadDue",
    "FirmwareInstallDue",
    "FirmwareMonitor",
    "FirmwareSnapshot",
    "FirmwareUpdateCanceled",
    "FirmwareUpdater",
    "FlowAnomaly",
    "FlowFactory",
    "FlowHost",
    "InMemoryCache",
    "InMemoryConfiguration",
    "InMemoryDeviceModel",
    "InMemoryLocalList",
    "LocalListSync",
    "LogMonitor",
    "LogUploader",
    "MeterSampleDue",
    "MeterSchedule",
    "Outbox",
    "RemoteControl",
    "RemoteMonitor",
    "RemoteStartAccepted",
    "RemoteStopAccepted",
    "ReportCollector",
    "Reservations",
    "Reset",
    "ResetAccepted",
    "ResetDue",
    "TransactionEvents",
    "Transactions16",
    "UnlockRequested",
    "UploadCanceled",
    "UploadDue",
    "Verdict",
    "posix_clock",
    "standard_variables",
    "uuid_transaction_ids",
]
