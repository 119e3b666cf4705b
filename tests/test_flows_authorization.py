"""Local authorization end to end: the Local Authorization List (SendLocalList,
GetLocalListVersion), the Authorization Cache (store, expiry, ClearCache) and the lookup
order online and offline (1.6 §3.5, §5.4, §5.10, §5.15; 2.x C01, C10-C15, D01, D02)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from _flowkit import Rig, wall
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_sansio.events import RequestReceived
from ocpp_sansio.flows.authorization import (
    AuthInfo,
    Authorization,
    AuthorizationDecided,
    AuthorizationSource,
    CacheCleared,
    CacheEntry,
    InMemoryCache,
    InMemoryLocalList,
    LocalEntry,
    LocalListConflict,
    LocalListOutOfSync,
    LocalListSync,
    LocalListUpdated,
    Verdict,
    token_key,
)
from ocpp_sansio.flows.transactions import CsmsTransactions16, Transactions16

VERSIONS = ("1.6", "2.0.1", "2.1")
V2 = ("2.0.1", "2.1")
ON = {
    "1.6": {"LocalAuthListEnabled": "true", "AuthorizationCacheEnabled": "true"},
    "2": {"LocalAuthListCtrlr.Enabled": "true", "AuthCacheCtrlr.Enabled": "true"},
}


class Settings:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def setting(self, name: str) -> str | None:
        return self.values.get(name)


SPELLED = {
    "preauthorize": ("LocalPreauthorize", "AuthCtrlr.LocalPreAuthorize"),
    "offline": ("LocalAuthorizeOffline", "AuthCtrlr.LocalAuthorizeOffline"),
    "unknown_offline": ("AllowOfflineTxForUnknownId", "AuthCtrlr.OfflineTxForUnknownIdEnabled"),
    "cache": ("AuthorizationCacheEnabled", "AuthCacheCtrlr.Enabled"),
    "list": ("LocalAuthListEnabled", "LocalAuthListCtrlr.Enabled"),
}


def name(version: str, role: str) -> str:
    """The setting playing ``role``, spelled for ``version``."""
    return SPELLED[role][0 if version == "1.6" else 1] if role in SPELLED else role


def names(version: str, **values: str) -> dict[str, str]:
    """Settings by role, spelled for ``version``, on top of list and cache enabled."""
    base = dict(ON["1.6" if version == "1.6" else "2"])
    base |= {name(version, role): value for role, value in values.items()}
    return base


def setup(
    version: str, *, local_list: bool = True, cache: bool = True, **values: str
) -> tuple[Rig, Authorization, LocalListSync, Settings]:
    rig = Rig(version)
    options = Settings(names(version, **values))
    flow = Authorization(
        rig.station,
        settings=options,
        local_list=InMemoryLocalList() if local_list else None,
        cache=InMemoryCache(capacity=3) if cache else None,
    )
    sync = LocalListSync(rig.csms, items_per_message=2)
    rig.station_flows.append(flow)
    rig.csms_flows.append(sync)
    return rig, flow, sync, options


def token(rig: Rig, value: str) -> Any:
    if rig.version == "1.6":
        return value
    kind = rig.m.IdTokenEnum.ISO14443 if rig.version == "2.0.1" else "ISO14443"
    return rig.m.IdToken(id_token=value, type=kind)


def entry(rig: Rig, value: str, status: str | None = "Accepted", expiry: Any = None) -> Any:
    m = rig.m
    if rig.version == "1.6":
        info = None
        if status is not None:
            info = m.IdTagInfo(status=m.AuthorizationStatus(status), expiry_date=expiry)
        return m.AuthorizationData(id_tag=value, id_tag_info=info)
    info = None
    if status is not None:
        info = m.IdTokenInfo(
            status=m.AuthorizationStatusEnum(status), cache_expiry_date_time=expiry
        )
    return m.AuthorizationData(id_token=token(rig, value), id_token_info=info)


def send_list(rig: Rig, version_number: int, update: str, *entries: Any) -> str:
    m = rig.m
    items = list(entries) or None
    if rig.version == "1.6":
        request = m.SendLocalListRequest(
            list_version=version_number,
            update_type=m.UpdateType(update),
            local_authorization_list=items,
        )
    else:
        request = m.SendLocalListRequest(
            version_number=version_number,
            update_type=m.UpdateEnum(update),
            local_authorization_list=items,
        )
    rig.csms_sends(request)
    return str(rig.answers("station->csms")[-1]["status"])


def list_version(rig: Rig) -> int:
    rig.csms_sends(rig.m.GetLocalListVersionRequest())
    answer = rig.answers("station->csms")[-1]
    return int(answer["listVersion" if rig.version == "1.6" else "versionNumber"])


def decisions(flow: Authorization) -> list[AuthorizationDecided]:
    return [e for e in flow.events() if isinstance(e, AuthorizationDecided)]


class AnswerAuthorize:
    """A CSMS answering Authorize with ``status`` (and an optional group id)."""

    def __init__(self, rig: Rig, status: str = "Accepted") -> None:
        self.rig = rig
        self.status = status
        self.seen = 0

    def handle_event(self, event: Any, now: float) -> bool:
        if not (isinstance(event, RequestReceived) and event.action == "Authorize"):
            return False
        self.seen += 1
        m = self.rig.m
        if self.rig.version == "1.6":
            info = m.IdTagInfo(status=m.AuthorizationStatus(self.status))
            answer = m.AuthorizeResponse(id_tag_info=info)
        else:
            info = m.IdTokenInfo(status=m.AuthorizationStatusEnum(self.status))
            answer = m.AuthorizeResponse(id_token_info=info)
        self.rig.csms.send_response(event.message_id, answer, now)
        return True


# --- D01 / D02: the Local Authorization List --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_15_d02_fr_01_full_list_and_its_version(version: str) -> None:
    rig, flow, _, _ = setup(version)
    assert list_version(rig) == 0  # D02.FR.02: nothing sent yet
    assert send_list(rig, 3, "Full", entry(rig, "A"), entry(rig, "B", "Blocked")) == "Accepted"
    assert list_version(rig) == 3
    assert flow.local_list is not None and flow.local_list.count() == 2
    (updated,) = [e for e in flow.events() if isinstance(e, LocalListUpdated)]
    assert (updated.version, updated.entries, updated.update_type) == (3, 2, "Full")


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_04_full_without_list_empties_it_and_keeps_the_version(version: str) -> None:
    rig, flow, _, _ = setup(version)
    send_list(rig, 1, "Full", entry(rig, "A"))
    assert send_list(rig, 2, "Full") == "Accepted"
    assert flow.local_list is not None and flow.local_list.count() == 0
    assert list_version(rig) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_16_17_05_differential_adds_updates_removes(version: str) -> None:
    rig, flow, _, _ = setup(version)
    send_list(rig, 1, "Full", entry(rig, "A"), entry(rig, "B"))
    assert (
        send_list(
            rig,
            2,
            "Differential",
            entry(rig, "B", "Blocked"),
            entry(rig, "C"),
            entry(rig, "A", None),
        )
        == "Accepted"
    )
    local = flow.local_list
    assert local is not None and local.count() == 2
    assert local.get(token_key(version, token(rig, "A"))) is None
    b = local.get(token_key(version, token(rig, "b")))  # identifiers are case-insensitive
    assert b is not None and b.info.status == "Blocked"
    assert send_list(rig, 5, "Differential") == "Accepted"  # D01.FR.05: only the version
    assert list_version(rig) == 5 and local.count() == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_19_stale_differential_version_is_a_version_mismatch(version: str) -> None:
    rig, flow, _, _ = setup(version)
    send_list(rig, 4, "Full", entry(rig, "A"))
    for stale in (4, 3):
        assert send_list(rig, stale, "Differential", entry(rig, "B")) == "VersionMismatch"
    assert flow.local_list is not None and flow.local_list.count() == 1
    assert list_version(rig) == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_06_duplicate_identifiers_fail_and_change_nothing(version: str) -> None:
    rig, flow, _, _ = setup(version)
    send_list(rig, 1, "Full", entry(rig, "A"))
    assert send_list(rig, 2, "Full", entry(rig, "X"), entry(rig, "x")) == "Failed"
    assert list_version(rig) == 1
    assert flow.local_list is not None and flow.local_list.count() == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_full_list_entries_need_their_info(version: str) -> None:
    rig, _, _, _ = setup(version)
    assert send_list(rig, 1, "Full", entry(rig, "A", None)) == "Failed"


def test_16_list_longer_than_local_auth_list_max_length_fails() -> None:
    rig, _, _, _ = setup("1.6", LocalAuthListMaxLength="2")
    assert send_list(rig, 1, "Full", entry(rig, "A"), entry(rig, "B"), entry(rig, "C")) == "Failed"
    assert send_list(rig, 1, "Full", entry(rig, "A"), entry(rig, "B")) == "Accepted"
    assert send_list(rig, 2, "Differential", entry(rig, "C")) == "Failed"
    assert send_list(rig, 2, "Differential", entry(rig, "A", None), entry(rig, "C")) == "Accepted"


def test_16_5_10_without_local_list_support_version_is_minus_1_and_updates_not_supported() -> None:
    rig, _, _, _ = setup("1.6", local_list=False)
    assert list_version(rig) == -1
    assert send_list(rig, 1, "Full", entry(rig, "A")) == "NotSupported"


@pytest.mark.parametrize("version", V2)
def test_d02_fr_03_disabled_list_reports_version_0(version: str) -> None:
    rig, _, _, options = setup(version)
    send_list(rig, 6, "Full", entry(rig, "A"))
    options.values["LocalAuthListCtrlr.Enabled"] = "false"
    assert list_version(rig) == 0
    options.values["LocalAuthListCtrlr.Enabled"] = "true"
    assert list_version(rig) == 6


@pytest.mark.parametrize("version", V2)
def test_d01_fr_18_version_0_is_refused(version: str) -> None:
    rig, _, _, _ = setup(version)
    assert send_list(rig, 0, "Full", entry(rig, "A")) == "Failed"


# --- the CSMS keeps the list in step --------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_d01_fr_03_csms_resends_the_full_list_after_a_version_mismatch(version: str) -> None:
    rig, flow, sync, _ = setup(version)
    sync.set_full([entry(rig, "A"), entry(rig, "B"), entry(rig, "C")], rig.now)
    rig.flush()
    # Split over two messages: a Full part and a Differential part (D01.FR.03 note).
    assert list_version(rig) == 2
    assert flow.local_list is not None and flow.local_list.count() == 3
    # The station's list moves on behind our back (another CSMS node, a reset store …).
    send_list(rig, 9, "Full", entry(rig, "Z"))
    sync.update([entry(rig, "D")], rig.now)
    rig.flush()
    out = [e for e in sync.events() if isinstance(e, LocalListOutOfSync)]
    assert [(o.status, o.resent) for o in out] == [("VersionMismatch", True)]
    # The resent full list wins; versions go on from ours, and the station ends up in step.
    sync.version = 20
    sync.update([entry(rig, "E")], rig.now)
    rig.flush()
    assert flow.local_list.count() == 5
    assert list_version(rig) == 21


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_notices_a_version_it_does_not_hold(version: str) -> None:
    rig, _, sync, _ = setup(version)
    send_list(rig, 4, "Full", entry(rig, "A"))
    sync.request_version(rig.now)
    rig.flush()
    (out,) = [e for e in sync.events() if isinstance(e, LocalListOutOfSync)]
    assert (out.station_version, out.our_version, out.resent) == (4, 0, False)


# --- C10 / C11: the Authorization Cache ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_c10_fr_04_cache_learns_from_authorize_answers(version: str) -> None:
    rig, flow, _, _ = setup(version)
    csms = AnswerAuthorize(rig, "Blocked")
    rig.csms_flows.append(csms)
    decision = flow.authorize(token(rig, "NEW"), rig.now)
    assert decision.verdict is Verdict.ASK_CSMS
    rig.flush()
    (decided,) = decisions(flow)
    assert (decided.accepted, decided.source) == (False, AuthorizationSource.CSMS)
    assert flow.cache is not None
    cached = flow.cache.get(token_key(version, token(rig, "NEW")))
    assert cached is not None and cached.info.status == "Blocked"
    # C10.FR.03: a cached identifier that is not Accepted is checked with the CSMS again.
    assert flow.lookup(token(rig, "NEW"), rig.now).verdict is Verdict.ASK_CSMS


def test_16_3_5_1_cache_learns_from_start_transaction_answers() -> None:
    rig, flow, _, _ = setup("1.6")
    transactions = Transactions16(rig.station)
    rig.station_flows.append(transactions)
    rig.csms_flows.append(CsmsTransactions16(rig.csms, authorize=lambda tag: "Invalid"))
    transactions.start(1, "CARD", 0, rig.now)
    rig.flush()
    assert flow.cache is not None
    cached = flow.cache.get("card")
    assert cached is not None and cached.info.status == "Invalid"


@pytest.mark.parametrize("version", VERSIONS)
def test_3_5_3_identifiers_on_the_local_list_are_not_cached(version: str) -> None:
    rig, flow, _, _ = setup(version)
    send_list(rig, 1, "Full", entry(rig, "LISTED", "Blocked"))
    rig.csms_flows.append(AnswerAuthorize(rig, "Accepted"))
    flow.authorize(token(rig, "LISTED"), rig.now)
    rig.flush()
    assert (
        flow.cache is not None and flow.cache.get(token_key(version, token(rig, "LISTED"))) is None
    )
    conflicts = [e for e in flow.events() if isinstance(e, LocalListConflict)]
    assert len(conflicts) == (1 if version == "1.6" else 0)  # 1.6 §3.5.2


@pytest.mark.parametrize("version", VERSIONS)
def test_c11_clear_cache(version: str) -> None:
    rig, flow, _, options = setup(version)
    rig.csms_flows.append(AnswerAuthorize(rig))
    flow.authorize(token(rig, "A"), rig.now)
    rig.flush()
    rig.csms_sends(rig.m.ClearCacheRequest())
    assert rig.answers("station->csms")[-1] == {"status": "Accepted"}  # C11.FR.03
    assert flow.cache is not None and len(flow.cache) == 0  # type: ignore[arg-type]
    assert any(isinstance(e, CacheCleared) for e in flow.events())
    options.values[name(version, "cache")] = "false"
    rig.csms_sends(rig.m.ClearCacheRequest())
    assert rig.answers("station->csms")[-1] == {"status": "Rejected"}  # C11.FR.04


@pytest.mark.parametrize("version", VERSIONS)
def test_c11_fr_05_no_cache_rejects_clear_cache(version: str) -> None:
    rig, _, _, _ = setup(version, cache=False)
    rig.csms_sends(rig.m.ClearCacheRequest())
    assert rig.answers("station->csms")[-1] == {"status": "Rejected"}


def test_c10_fr_07_a_full_cache_drops_invalid_entries_then_the_least_recently_used() -> None:
    cache = InMemoryCache(capacity=3)

    def put(key: str, status: str, used: float) -> None:
        cache.put(
            key, CacheEntry(token=key, info=AuthInfo(status=status), stored_at=0, last_used=used)
        )

    put("a", "Accepted", 1)
    put("b", "Blocked", 5)
    put("c", "Accepted", 2)
    put("d", "Accepted", 3)  # b goes: not valid
    assert cache.get("b") is None
    put("e", "Accepted", 4)  # a goes: the least recently used valid one
    assert cache.get("a") is None and len(cache) == 3


@pytest.mark.parametrize("version", V2)
def test_c10_fr_08_cache_lifetime_counts_from_last_use(version: str) -> None:
    rig, flow, _, options = setup(version, preauthorize="true")
    options.values["AuthCacheCtrlr.LifeTime"] = "100"
    rig.csms_flows.append(AnswerAuthorize(rig))
    flow.authorize(token(rig, "A"), rig.now)
    rig.flush()
    rig.advance(60)
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ACCEPTED  # used: renewed
    rig.advance(99)
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ACCEPTED
    rig.advance(101)
    decision = flow.lookup(token(rig, "A"), rig.now)
    assert decision.verdict is Verdict.ASK_CSMS and decision.info is not None
    assert decision.info.status == "Expired"  # C10.FR.10


@pytest.mark.parametrize("version", VERSIONS)
def test_c10_fr_13_cache_expiry_date_wins(version: str) -> None:
    rig, flow, _, _ = setup(version, preauthorize="true")
    expires = wall(rig.now) + timedelta(seconds=30)
    flow._learn(  # what an Authorize answer with an expiry date teaches the cache
        "Authorize",
        _Request(rig, "A"),
        _Answer(rig, "Accepted", expires),
        rig.now,
    )
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ACCEPTED
    rig.advance(31)
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ASK_CSMS


class _Request:
    def __init__(self, rig: Rig, value: str) -> None:
        self.id_tag = value
        self.id_token = token(rig, value)


class _Answer:
    def __init__(self, rig: Rig, status: str, expiry: Any) -> None:
        m = rig.m
        if rig.version == "1.6":
            self.id_tag_info = m.IdTagInfo(status=m.AuthorizationStatus(status), expiry_date=expiry)
        else:
            self.id_token_info = m.IdTokenInfo(
                status=m.AuthorizationStatusEnum(status), cache_expiry_date_time=expiry
            )


# --- the lookup order ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_c14_fr_02_listed_and_valid_starts_at_once_with_local_preauthorize(version: str) -> None:
    rig, flow, _, options = setup(version, preauthorize="true")
    send_list(rig, 1, "Full", entry(rig, "A"))
    csms = AnswerAuthorize(rig)
    rig.csms_flows.append(csms)
    decision = flow.authorize(token(rig, "A"), rig.now)
    assert (decision.verdict, decision.source) == (Verdict.ACCEPTED, AuthorizationSource.LOCAL_LIST)
    rig.flush()
    assert csms.seen == 0
    # Without pre-authorization the CSMS is asked even for a listed identifier.
    options.values[name(version, "preauthorize")] = "false"
    assert flow.authorize(token(rig, "A"), rig.now).verdict is Verdict.ASK_CSMS
    rig.flush()
    assert csms.seen == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_c14_fr_03_listed_but_not_valid_is_asked_online(version: str) -> None:
    rig, flow, _, _ = setup(version, preauthorize="true")
    send_list(rig, 1, "Full", entry(rig, "A", "Blocked"))
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ASK_CSMS


@pytest.mark.parametrize("version", VERSIONS)
def test_c13_fr_01_the_list_has_priority_over_the_cache(version: str) -> None:
    rig, flow, _, _ = setup(version, preauthorize="true")
    rig.csms_flows.append(AnswerAuthorize(rig, "Accepted"))
    flow.authorize(token(rig, "A"), rig.now)
    rig.flush()
    send_list(rig, 1, "Full", entry(rig, "A", "Invalid"))
    decision = flow.lookup(token(rig, "A"), rig.now)
    assert (
        decision.source is AuthorizationSource.LOCAL_LIST and decision.verdict is Verdict.ASK_CSMS
    )
    rig.disconnect()
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.REJECTED


@pytest.mark.parametrize("version", VERSIONS)
def test_offline_order_list_cache_unknown(version: str) -> None:
    rig, flow, _, options = setup(version)
    send_list(rig, 1, "Full", entry(rig, "LISTED"), entry(rig, "BLOCKED", "Blocked"))
    rig.csms_flows.append(AnswerAuthorize(rig))
    flow.authorize(token(rig, "CACHED"), rig.now)
    rig.flush()
    rig.disconnect()

    def verdict(value: str) -> tuple[Verdict, AuthorizationSource | None]:
        decision = flow.lookup(token(rig, value), rig.now)
        return decision.verdict, decision.source

    assert verdict("LISTED") == (Verdict.ACCEPTED, AuthorizationSource.LOCAL_LIST)
    assert verdict("BLOCKED") == (Verdict.REJECTED, AuthorizationSource.LOCAL_LIST)  # 1.6 §3.5.4
    assert verdict("CACHED") == (Verdict.ACCEPTED, AuthorizationSource.CACHE)
    assert verdict("STRANGER") == (Verdict.REJECTED, AuthorizationSource.UNKNOWN_OFFLINE)
    options.values[name(version, "unknown_offline")] = "true"
    assert verdict("STRANGER") == (
        Verdict.ACCEPTED,
        AuthorizationSource.UNKNOWN_OFFLINE,
    )  # C15.FR.08
    assert verdict("BLOCKED") == (
        Verdict.REJECTED,
        AuthorizationSource.LOCAL_LIST,
    )  # known: not "unknown"
    options.values[name(version, "offline")] = "false"
    assert verdict("LISTED") == (Verdict.REJECTED, AuthorizationSource.LOCAL_LIST)


@pytest.mark.parametrize("version", V2)
def test_c13_fr_05_list_expiry_counts_only_with_supports_expiry_date_time(version: str) -> None:
    rig, flow, _, options = setup(version)
    send_list(rig, 1, "Full", entry(rig, "A", expiry=wall(rig.now) + timedelta(seconds=10)))
    rig.disconnect()
    rig.advance(20)
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.ACCEPTED  # C13.FR.02
    options.values["LocalAuthListCtrlr.SupportsExpiryDateTime"] = "true"
    assert flow.lookup(token(rig, "A"), rig.now).verdict is Verdict.REJECTED  # C13.FR.05


def test_16_3_5_4_an_expired_list_entry_is_rejected_offline() -> None:
    rig, flow, _, _ = setup("1.6")
    send_list(rig, 1, "Full", entry(rig, "A", expiry=wall(rig.now) + timedelta(seconds=10)))
    rig.disconnect()
    rig.advance(20)
    assert flow.lookup("A", rig.now).verdict is Verdict.REJECTED


@pytest.mark.parametrize("version", VERSIONS)
def test_a_failed_authorize_falls_back_to_the_offline_order(version: str) -> None:
    rig, flow, _, _ = setup(version, unknown_offline="true")

    class Silent:
        def handle_event(self, event: Any, now: float) -> bool:
            return isinstance(event, RequestReceived) and event.action == "Authorize"

    rig.csms_flows.append(Silent())
    assert flow.authorize(token(rig, "X"), rig.now).verdict is Verdict.ASK_CSMS
    rig.advance(40)  # the call times out
    (decided,) = decisions(flow)
    assert (decided.accepted, decided.source) == (True, AuthorizationSource.UNKNOWN_OFFLINE)


@pytest.mark.parametrize("version", V2)
def test_c01_fr_01_authorization_disabled_accepts_everyone(version: str) -> None:
    rig, flow, _, _ = setup(version, **{"AuthCtrlr.Enabled": "false"})
    decision = flow.authorize(token(rig, "ANY"), rig.now)
    assert (decision.verdict, decision.source) == (
        Verdict.ACCEPTED,
        AuthorizationSource.AUTHORIZATION_DISABLED,
    )


# --- random list updates ----------------------------------------------------------------------


updates = st.lists(
    st.tuples(
        st.sampled_from(["Full", "Differential"]),
        st.integers(-1, 8),
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "A", "d"]),
                st.sampled_from([None, "Accepted", "Blocked"]),
            ),
            max_size=4,
        ),
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(version=st.sampled_from(VERSIONS), steps=updates)
def test_random_send_local_list_matches_a_model(version: str, steps: list[Any]) -> None:
    rig = Rig(version, connect=False)
    flow = Authorization(
        rig.station, settings=Settings(names(version)), local_list=InMemoryLocalList()
    )
    model: dict[str, str] = {}
    model_version = 0
    m = rig.m
    for update_type, number, items in steps:
        data = [entry(rig, value, status) for value, status in items]
        if version == "1.6":
            request = m.SendLocalListRequest(
                list_version=number,
                update_type=m.UpdateType(update_type),
                local_authorization_list=data or None,
            )
        else:
            request = m.SendLocalListRequest(
                version_number=number,
                update_type=m.UpdateEnum(update_type),
                local_authorization_list=data or None,
            )
        status = flow.send_local_list(request)
        keys = [value.casefold() for value, _ in items]
        floor = 0 if version == "1.6" else 1
        if number < floor:
            expected = "Failed"
        elif update_type == "Differential" and number <= model_version:
            expected = "VersionMismatch"  # D01.FR.19 first: a stale update is refused as such
        elif len(set(keys)) != len(keys) or (
            update_type == "Full" and any(s is None for _, s in items)
        ):
            expected = "Failed"
        else:
            expected = "Accepted"
        assert status == expected
        if status == "Accepted":
            if update_type == "Full":
                model = {}
            for value, item_status in items:
                if item_status is None:
                    model.pop(value.casefold(), None)
                else:
                    model[value.casefold()] = item_status
            model_version = number
        assert flow.local_list is not None
        assert flow.local_list.list_version() == model_version
        assert flow.local_list.count() == len(model)
        for key, item_status in model.items():
            found = flow.local_list.get(token_key(version, token(rig, key)))
            assert found is not None and found.info.status == item_status


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    online=st.booleans(),
    listed=st.sampled_from([None, "Accepted", "Blocked"]),
    cached=st.sampled_from([None, "Accepted", "Invalid"]),
    flags=st.fixed_dictionaries(
        {
            role: st.sampled_from(["true", "false"])
            for role in ("preauthorize", "offline", "unknown_offline", "list", "cache")
        }
    ),
)
def test_random_lookups_follow_the_documented_table(
    version: str, online: bool, listed: str | None, cached: str | None, flags: dict[str, str]
) -> None:
    rig = Rig(version)
    flow = Authorization(
        rig.station,
        settings=Settings(names(version, **flags)),
        local_list=InMemoryLocalList(),
        cache=InMemoryCache(),
    )
    key = token_key(version, token(rig, "T"))
    if listed is not None:
        flow.local_list.replace(1, {key: _local(listed)})  # type: ignore[union-attr]
    if cached is not None:
        info = AuthInfo(status=cached)
        flow.cache.put(key, CacheEntry(token="T", info=info, stored_at=0, last_used=0))  # type: ignore[union-attr]
    if not online:
        rig.disconnect()
    decision = flow.lookup(token(rig, "T"), rig.now)
    on = {role: value == "true" for role, value in flags.items()}
    known = (
        ("list", listed)
        if listed is not None and on["list"]
        else ("cache", cached)
        if cached is not None and on["cache"]
        else None
    )
    if known is None:
        expected = (
            Verdict.ASK_CSMS
            if online
            else (Verdict.ACCEPTED if on["unknown_offline"] else Verdict.REJECTED)
        )
    elif known[1] == "Accepted":
        local_ok = on["preauthorize"] if online else on["offline"]
        expected = (
            Verdict.ACCEPTED if local_ok else (Verdict.ASK_CSMS if online else Verdict.REJECTED)
        )
    else:
        expected = Verdict.ASK_CSMS if online else Verdict.REJECTED
    assert decision.verdict is expected


def _local(status: str) -> LocalEntry:
    return LocalEntry(token="T", info=AuthInfo(status=status))
