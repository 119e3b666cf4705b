"""Protocol flows on top of the station and CSMS cores: pure logic, time and randomness
passed in, each fed the core's events through ``handle_event(event, now)``."""

from .authorization import (
    Authorization,
    AuthorizationDecided,
    InMemoryCache,
    InMemoryLocalList,
    LocalListSync,
    Verdict,
)
from .configuration import Configuration16, ConfigurationChanged, InMemoryConfiguration
from .data_transfer import DataTransferReply, DataTransferRouter
from .device_model import DeviceModel, InMemoryDeviceModel, ReportCollector, standard_variables
from .metering import MeterSampleDue, MeterSchedule
from .reservations import CsmsReservations, Reservations
from .transactions import (
    CsmsTransactionEvents,
    CsmsTransactions16,
    TransactionEvents,
    Transactions16,
    uuid_transaction_ids,
)

__all__ = [
    "Authorization",
    "AuthorizationDecided",
    "Configuration16",
    "ConfigurationChanged",
    "CsmsReservations",
    "CsmsTransactionEvents",
    "CsmsTransactions16",
    "DataTransferReply",
    "DataTransferRouter",
    "DeviceModel",
    "InMemoryCache",
    "InMemoryConfiguration",
    "InMemoryDeviceModel",
    "InMemoryLocalList",
    "LocalListSync",
    "MeterSampleDue",
    "MeterSchedule",
    "ReportCollector",
    "Reservations",
    "TransactionEvents",
    "Transactions16",
    "Verdict",
    "standard_variables",
    "uuid_transaction_ids",
]
