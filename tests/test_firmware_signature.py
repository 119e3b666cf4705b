"""Firmware signing certificates and signatures (2.0.1/2.1 L01, 1.6 security L01), with
certificates made here by cryptography's X.509 builder; then the pieces in the flow
(FirmwareUpdater) with a real download, as the station simulator will use them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from _flowkit import Rig, later, wall
from _transferkit import HANG, HttpFiles, http_server, refusing_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from ocpp_sansio.adapters.transfer import TransferError, download, file_chunks
from ocpp_sansio.firmware_signature import (
    CertificateVerdict,
    SignatureVerdict,
    check_signing_certificate,
    check_update_request,
    verify_firmware_signature,
)
from ocpp_sansio.flows.firmware import FirmwareDownloadDue, FirmwareUpdater

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FIRMWARE = b"\x7fELF firmware image " * 4096

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@attrs.frozen
class Issued:
    key: Any
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Charger Works"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    subject: str,
    *,
    issuer: Issued | None = None,
    key: Any = None,
    ca: bool = False,
    not_before: datetime = NOW - 30 * DAY,
    not_after: datetime = NOW + 365 * DAY,
    key_usage: x509.KeyUsage | None = None,
) -> Issued:
    """A certificate for ``subject``, self-signed when no ``issuer`` is given."""
    key = key if key is not None else ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer.cert.subject if issuer else name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    signer = issuer.key if issuer else key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(key, builder.sign(signer, algorithm))


def usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not digital_signature,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="module")
def root() -> Issued:
    return issue("Manufacturer Root", ca=True, not_before=NOW - 3650 * DAY)


@pytest.fixture(scope="module")
def signer(root: Issued) -> Issued:
    return issue("Firmware Signing", issuer=root, key_usage=usage(digital_signature=True))


def sign(key: Any, data: bytes) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
        raw = key.sign(data, pss, hashes.SHA256())
    return base64.b64encode(raw).decode()


# --- the signing certificate, before accepting the update ------------------------------------


def test_L01_FR_21_a_certificate_issued_by_an_installed_root_is_valid(
    root: Issued, signer: Issued
) -> None:
    check = check_signing_certificate(signer.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.VALID, check.reason
    assert check.update_firmware_status is None


def test_L01_FR_22_an_expired_signing_certificate_is_InvalidCertificate(root: Issued) -> None:
    expired = issue("Old Signing", issuer=root, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    check = check_signing_certificate(expired.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.EXPIRED
    assert "expired" in check.reason
    assert check.update_firmware_status == "InvalidCertificate"


def test_L01_FR_22_a_signing_certificate_not_valid_yet_is_InvalidCertificate(root: Issued) -> None:
    future = issue("Future Signing", issuer=root, not_before=NOW + DAY)
    check = check_signing_certificate(future.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.NOT_YET_VALID
    assert check.update_firmware_status == "InvalidCertificate"


def test_L01_FR_22_validity_bounds_are_inclusive(root: Issued) -> None:
    edge = issue("Edge", issuer=root, not_before=NOW - DAY, not_after=NOW)
    assert check_signing_certificate(edge.pem, [root.pem], NOW).valid
    assert not check_signing_certificate(edge.pem, [root.pem], NOW + timedelta(seconds=1)).valid


def test_L01_FR_22_a_certificate_of_another_root_is_untrusted(root: Issued) -> None:
    # TC_L_05_CS: a well-formed certificate that the station's root did not issue.
    stranger_root = issue("Manufacturer Root", ca=True)  # same name, another key
    stranger = issue("Firmware Signing", issuer=stranger_root)
    check = check_signing_certificate(stranger.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.UNTRUSTED
    assert check.update_firmware_status == "InvalidCertificate"


def test_L01_FR_22_a_self_signed_certificate_is_untrusted(root: Issued) -> None:
    alone = issue("Firmware Signing")
    assert check_signing_certificate(alone.pem, [root.pem], NOW).verdict is (
        CertificateVerdict.UNTRUSTED
    )


def test_L01_remarks_a_certificate_under_an_intermediate_is_untrusted(root: Issued) -> None:
    intermediate = issue("Manufacturer Sub CA", issuer=root, ca=True)
    leaf = issue("Firmware Signing", issuer=intermediate)
    # Even with the intermediate sent along: the manufacturer uses none (L01 remarks).
    check = check_signing_certificate(leaf.pem + intermediate.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.UNTRUSTED
    assert "intermediate" in check.reason


def test_any_of_several_installed_roots_may_issue(root: Issued, signer: Issued) -> None:
    other = issue("Other Manufacturer", ca=True)
    assert check_signing_certificate(signer.pem, [other.pem, root.pem], NOW).valid
    assert check_signing_certificate(signer.pem, [other.pem + root.pem], NOW).valid


def test_without_a_manufacturer_root_no_signed_firmware_is_accepted(signer: Issued) -> None:
    check = check_signing_certificate(signer.pem, [], NOW)
    assert check.verdict is CertificateVerdict.UNTRUSTED
    assert "no ManufacturerRootCertificate" in check.reason


def test_L01_FR_22_an_expired_root_makes_the_certificate_invalid() -> None:
    old_root = issue("Old Root", ca=True, not_before=NOW - 900 * DAY, not_after=NOW - DAY)
    leaf = issue("Firmware Signing", issuer=old_root, not_after=NOW + DAY)
    check = check_signing_certificate(leaf.pem, [old_root.pem], NOW)
    assert check.verdict is CertificateVerdict.EXPIRED
    assert "ManufacturerRootCertificate" in check.reason


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ],
)
def test_L01_FR_22_a_malformed_certificate_is_InvalidCertificate(root: Issued, pem: str) -> None:
    check = check_signing_certificate(pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.MALFORMED
    assert check.update_firmware_status == "InvalidCertificate"


def test_A00_FR_502_an_rsa_key_under_2048_bits_may_not_sign(root: Issued) -> None:
    weak = issue("Weak", issuer=root, key=rsa.generate_private_key(65537, 1024))
    check = check_signing_certificate(weak.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.UNSUITABLE
    assert "A00.FR.502" in check.reason


def test_A00_FR_503_an_ec_key_under_224_bits_may_not_sign(root: Issued) -> None:
    weak = issue("Weak", issuer=root, key=ec.generate_private_key(ec.SECP192R1()))
    check = check_signing_certificate(weak.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.UNSUITABLE
    assert "A00.FR.503" in check.reason


def test_L01_FR_04_a_key_that_is_neither_rsa_nor_ec_may_not_sign(root: Issued) -> None:
    edwards = issue("Edwards", issuer=root, key=ed25519.Ed25519PrivateKey.generate())
    assert check_signing_certificate(edwards.pem, [root.pem], NOW).verdict is (
        CertificateVerdict.UNSUITABLE
    )


def test_A00_FR_512_a_key_usage_without_digital_signature_may_not_sign(root: Issued) -> None:
    wrong = issue("CA-ish", issuer=root, key_usage=usage(digital_signature=False))
    check = check_signing_certificate(wrong.pem, [root.pem], NOW)
    assert check.verdict is CertificateVerdict.UNSUITABLE
    assert "A00.FR.512" in check.reason


def revocation_list(issuer: Issued, *serials: int) -> str:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + DAY)
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - DAY)
            .build()
        )
    return (
        builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    )


def test_1_6_security_L01_FR_25_a_revoked_certificate_is_RevokedCertificate(
    root: Issued, signer: Issued
) -> None:
    crl = revocation_list(root, signer.cert.serial_number)
    check = check_signing_certificate(signer.pem, [root.pem], NOW, crls=[crl])
    assert check.verdict is CertificateVerdict.REVOKED
    assert check.update_firmware_status == "RevokedCertificate"


def test_a_revocation_list_the_root_did_not_sign_is_not_believed(
    root: Issued, signer: Issued
) -> None:
    impostor = Issued(ec_key(), root.cert)  # the root's name, another key
    crl = revocation_list(impostor, signer.cert.serial_number)
    assert check_signing_certificate(signer.pem, [root.pem], NOW, crls=[crl]).valid


def test_a_revocation_list_without_the_serial_changes_nothing(root: Issued, signer: Issued) -> None:
    crl = revocation_list(root, signer.cert.serial_number + 1)
    assert check_signing_certificate(signer.pem, [root.pem], NOW, crls=[crl]).valid


def test_the_stations_own_mistakes_raise(root: Issued, signer: Issued) -> None:
    with pytest.raises(ValueError, match="trusted root 0"):
        check_signing_certificate(signer.pem, ["not a certificate"], NOW)
    with pytest.raises(ValueError, match="revocation list 0"):
        check_signing_certificate(signer.pem, [root.pem], NOW, crls=["junk"])
    with pytest.raises(ValueError, match="timezone"):
        check_signing_certificate(signer.pem, [root.pem], datetime(2025, 6, 1))


# --- the signature, after the download -----------------------------------------------------------


def test_L01_FR_04_an_ecdsa_sha256_signature_over_the_whole_file_verifies(signer: Issued) -> None:
    check = verify_firmware_signature(signer.pem, sign(signer.key, FIRMWARE), FIRMWARE)
    assert check.verdict is SignatureVerdict.VALID, check.reason
    assert check.firmware_status == "SignatureVerified"


def test_L01_FR_04_an_rsa_pss_signature_verifies(root: Issued) -> None:
    rsa_signer = issue("RSA Signing", issuer=root, key=rsa.generate_private_key(65537, 2048))
    check = verify_firmware_signature(rsa_signer.pem, sign(rsa_signer.key, FIRMWARE), FIRMWARE)
    assert check.valid and "RSA-PSS" in check.reason


def test_rsa_pkcs1v15_is_accepted_unless_the_station_holds_to_pss(root: Issued) -> None:
    rsa_signer = issue("RSA Signing", issuer=root, key=rsa.generate_private_key(65537, 2048))
    raw = rsa_signer.key.sign(FIRMWARE, padding.PKCS1v15(), hashes.SHA256())
    signature = base64.b64encode(raw).decode()
    assert verify_firmware_signature(rsa_signer.pem, signature, FIRMWARE).valid
    strict = verify_firmware_signature(
        rsa_signer.pem, signature, FIRMWARE, accept_rsa_pkcs1v15=False
    )
    assert strict.verdict is SignatureVerdict.INVALID


def test_L01_FR_04_a_tampered_file_is_InvalidSignature(signer: Issued) -> None:
    signature = sign(signer.key, FIRMWARE)
    check = verify_firmware_signature(signer.pem, signature, FIRMWARE + b"\x00")
    assert check.verdict is SignatureVerdict.INVALID
    assert check.firmware_status == "InvalidSignature"


@given(position=st.integers(0, len(FIRMWARE) - 1), bit=st.integers(0, 7))
def test_L01_FR_04_any_flipped_bit_breaks_the_signature(position: int, bit: int) -> None:
    signer = SIGNER_FOR_PROPERTIES
    tampered = bytearray(FIRMWARE)
    tampered[position] ^= 1 << bit
    assert not verify_firmware_signature(signer.pem, SIGNATURE_FOR_PROPERTIES, tampered).valid


def test_L01_FR_12_a_signature_by_another_key_is_InvalidSignature(signer: Issued) -> None:
    # TC_L_06_CS: a real signature, but not by the signing certificate's key.
    check = verify_firmware_signature(signer.pem, sign(ec_key(), FIRMWARE), FIRMWARE)
    assert check.verdict is SignatureVerdict.INVALID


def test_L01_FR_04_the_hash_is_sha256(signer: Issued) -> None:
    raw = signer.key.sign(FIRMWARE, ec.ECDSA(hashes.SHA384()))
    check = verify_firmware_signature(signer.pem, base64.b64encode(raw).decode(), FIRMWARE)
    assert check.verdict is SignatureVerdict.INVALID


def test_a_raw_r_s_ecdsa_signature_verifies(signer: Issued) -> None:
    r, s = utils.decode_dss_signature(signer.key.sign(FIRMWARE, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify_firmware_signature(signer.pem, base64.b64encode(raw).decode(), FIRMWARE).valid


def test_a_missing_signature_is_InvalidSignature(signer: Issued) -> None:
    for missing in (None, "", "  "):
        check = verify_firmware_signature(signer.pem, missing, FIRMWARE)
        assert check.verdict is SignatureVerdict.MISSING
        assert check.firmware_status == "InvalidSignature"


def test_a_signature_that_is_not_base64_is_malformed(signer: Issued) -> None:
    check = verify_firmware_signature(signer.pem, "not base64 ***", FIRMWARE)
    assert check.verdict is SignatureVerdict.MALFORMED


def test_a_base64_signature_may_be_wrapped_in_lines(signer: Issued) -> None:
    signature = sign(signer.key, FIRMWARE)
    wrapped = "\n".join(signature[i : i + 20] for i in range(0, len(signature), 20))
    assert verify_firmware_signature(signer.pem, wrapped, FIRMWARE).valid


def test_an_unreadable_certificate_is_malformed(signer: Issued) -> None:
    check = verify_firmware_signature("garbage", sign(signer.key, FIRMWARE), FIRMWARE)
    assert check.verdict is SignatureVerdict.MALFORMED


def test_an_edwards_key_cannot_sign_firmware(root: Issued) -> None:
    edwards = issue("Edwards", issuer=root, key=ed25519.Ed25519PrivateKey.generate())
    signature = base64.b64encode(edwards.key.sign(FIRMWARE)).decode()
    check = verify_firmware_signature(edwards.pem, signature, FIRMWARE)
    assert check.verdict is SignatureVerdict.UNSUPPORTED


def test_the_file_may_come_in_chunks(signer: Issued, tmp_path: Path) -> None:
    path = tmp_path / "fw.bin"
    path.write_bytes(FIRMWARE)
    signature = sign(signer.key, FIRMWARE)
    assert verify_firmware_signature(signer.pem, signature, file_chunks(path, 1000)).valid
    chunks: Iterator[bytes] = iter([FIRMWARE[:10], FIRMWARE[10:]])
    assert verify_firmware_signature(signer.pem, signature, chunks).valid


# --- UpdateFirmware requests ---------------------------------------------------------------------


def request_for(
    rig: Rig, certificate: str | None, signature: str | None, request_id: int = 1
) -> Any:
    m = rig.m
    firmware = m.Firmware(
        location="http://unused.example/fw.bin",
        retrieve_date_time=later(rig.now, 0),
        signing_certificate=certificate,
        signature=signature,
    )
    cls = m.SignedUpdateFirmwareRequest if rig.version == "1.6" else m.UpdateFirmwareRequest
    return cls(request_id=request_id, firmware=firmware)


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_check_update_request_judges_the_signing_certificate(
    version: str, root: Issued, signer: Issued
) -> None:
    rig = Rig(version, connect=False)
    expired = issue("Old Signing", issuer=root, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    good = request_for(rig, signer.pem, sign(signer.key, FIRMWARE))
    assert check_update_request(good, [root.pem], NOW) is None
    bad = request_for(rig, expired.pem, sign(expired.key, FIRMWARE))
    assert check_update_request(bad, [root.pem], NOW) == "InvalidCertificate"
    crl = revocation_list(root, signer.cert.serial_number)
    assert check_update_request(good, [root.pem], NOW, crls=[crl]) == "RevokedCertificate"


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_TC_L_18_CS_a_secure_station_rejects_an_update_without_signing_material(
    version: str, root: Issued, signer: Issued
) -> None:
    rig = Rig(version, connect=False)
    plain = request_for(rig, None, None)
    assert check_update_request(plain, [root.pem], NOW) is None  # L02 is allowed
    assert check_update_request(plain, [root.pem], NOW, require_signed=True) == "Rejected"
    no_signature = request_for(rig, signer.pem, None)
    assert check_update_request(no_signature, [root.pem], NOW, require_signed=True) == "Rejected"


def test_a_1_6_plain_update_has_nothing_to_check(root: Issued) -> None:
    rig = Rig("1.6", connect=False)
    request = rig.m.UpdateFirmwareRequest(location="ftp://x/fw.bin", retrieve_date=NOW)
    assert check_update_request(request, [root.pem], NOW, require_signed=True) is None


# --- the pieces in the flow ----------------------------------------------------------------------


def flow_pki(rig: Rig) -> tuple[Issued, Issued, datetime]:
    """A root and a signing certificate valid at the rig's wall-clock time."""
    now = wall(rig.now)
    root = issue(
        "Manufacturer Root", ca=True, not_before=now - 30 * DAY, not_after=now + 3650 * DAY
    )
    signer = issue("Firmware Signing", issuer=root, not_before=now - DAY, not_after=now + 365 * DAY)
    return root, signer, now


def updater_checking(rig: Rig, root: Issued) -> FirmwareUpdater:
    updater = FirmwareUpdater(
        rig.station, check=lambda request: check_update_request(request, [root.pem], wall(rig.now))
    )
    rig.station_flows.append(updater)
    return updater


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_TC_L_05_CS_an_expired_signing_certificate_is_answered_InvalidCertificate(
    version: str,
) -> None:
    rig = Rig(version)
    root, _, now = flow_pki(rig)
    expired = issue("Old Signing", issuer=root, not_before=now - 20 * DAY, not_after=now - DAY)
    updater = updater_checking(rig, root)
    rig.csms_sends(request_for(rig, expired.pem, sign(expired.key, FIRMWARE)))
    assert rig.answers()[-1] == {"status": "InvalidCertificate"}  # L01.FR.22
    assert [e["type"] for e in rig.calls("SecurityEventNotification")] == [
        "InvalidFirmwareSigningCertificate"  # L01.FR.02
    ]
    assert not updater.running


def run_download(updater: FirmwareUpdater, rig: Rig, target: Path) -> None:
    """What the firmware code does on FirmwareDownloadDue: download for real, report."""
    (due,) = [e for e in updater.events() if isinstance(e, FirmwareDownloadDue)]
    updater.download_started(rig.now)
    try:
        download(due.location, target, timeout=HANG)
    except TransferError:
        updater.download_failed(rig.now)
        return
    updater.downloaded(rig.now)
    firmware = due.request.firmware
    check = verify_firmware_signature(
        firmware.signing_certificate, firmware.signature, file_chunks(target)
    )
    if check.valid:
        updater.signature_verified(rig.now)
    else:
        updater.signature_invalid(rig.now)


def served_request(rig: Rig, base: str, signer: Issued, signature: str) -> Any:
    request = request_for(rig, signer.pem, signature)
    firmware = attrs.evolve(request.firmware, location=f"{base}/files/fw.bin")
    return attrs.evolve(request, firmware=firmware)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_TC_L_06_CS_a_real_download_with_a_wrong_signature_is_InvalidSignature(
    version: str, tmp_path: Path
) -> None:
    rig = Rig(version)
    root, signer, _ = flow_pki(rig)
    updater = updater_checking(rig, root)
    files = HttpFiles()
    files.files["fw.bin"] = FIRMWARE
    with http_server(files) as base:
        rig.csms_sends(served_request(rig, base, signer, sign(ec_key(), FIRMWARE)))
        assert rig.answers()[-1] == {"status": "Accepted"}
        run_download(updater, rig, tmp_path / "fw.bin")
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "InvalidSignature",
    ]
    assert [e["type"] for e in rig.calls("SecurityEventNotification")] == [
        "InvalidFirmwareSignature"  # L01.FR.03
    ]


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_L01_FR_04_a_real_download_with_its_signature_is_SignatureVerified(
    version: str, tmp_path: Path
) -> None:
    rig = Rig(version)
    root, signer, _ = flow_pki(rig)
    updater = updater_checking(rig, root)
    files = HttpFiles()
    files.files["fw.bin"] = FIRMWARE
    with http_server(files) as base:
        rig.csms_sends(served_request(rig, base, signer, sign(signer.key, FIRMWARE)))
        run_download(updater, rig, tmp_path / "fw.bin")
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
    ]
    assert (
        hashlib.sha256((tmp_path / "fw.bin").read_bytes()).digest()
        == hashlib.sha256(FIRMWARE).digest()
    )


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
@pytest.mark.parametrize("where", ["missing file", "nothing listening"])
def test_TC_L_07_CS_a_location_that_fails_is_DownloadFailed_after_the_retries(
    version: str, where: str, tmp_path: Path
) -> None:
    rig = Rig(version)
    root, signer, _ = flow_pki(rig)
    updater = updater_checking(rig, root)
    files = HttpFiles()  # serves nothing: the firmware "does not exist"
    with http_server(files) as base, refusing_port() as port:
        if where == "nothing listening":
            base = f"http://127.0.0.1:{port}"
        request = served_request(rig, base, signer, sign(signer.key, FIRMWARE))
        rig.csms_sends(attrs.evolve(request, retries=1, retry_interval=30))
        run_download(updater, rig, tmp_path / "fw.bin")
        rig.advance(30)  # retryInterval: the second attempt is due
        run_download(updater, rig, tmp_path / "fw.bin")
    rig.flush()
    assert rig.statuses("FirmwareStatusNotification") == [
        "Downloading",
        "Downloading",
        "DownloadFailed",  # L01.FR.30: after the last attempt
    ]
    assert not (tmp_path / "fw.bin").exists()


# A signer and signature shared by the hypothesis property (fixtures and @given do not mix).
_PROPERTY_ROOT = issue("Manufacturer Root", ca=True)
SIGNER_FOR_PROPERTIES = issue("Firmware Signing", issuer=_PROPERTY_ROOT)
SIGNATURE_FOR_PROPERTIES = sign(SIGNER_FOR_PROPERTIES.key, FIRMWARE)
