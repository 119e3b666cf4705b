"""Signed firmware: the signing certificate when the update is asked for, the signature
once the file is downloaded (2.0.1 and 2.1 L01; the 1.6 security extension's L01).

- ``check_signing_certificate`` is the check before accepting UpdateFirmware (L01.FR.21;
  1.6 security L01.FR.23): the Firmware Signing certificate must be issued by one of the
  station's ManufacturerRootCertificates itself (the manufacturer uses no intermediate
  certificates, L01 remarks), be valid at ``now`` (X.509 rules, L01.FR.12), fit for signing
  (A00.FR.502/503/512), and not be revoked. An invalid one is answered InvalidCertificate
  (L01.FR.22; 1.6 security L01.FR.24), a revoked one RevokedCertificate (1.6 security
  L01.FR.25), with the security event InvalidFirmwareSigningCertificate (L01.FR.02).
- ``verify_firmware_signature`` is the check after the download (L01.FR.04): a signature
  over the entire file, SHA-256 for the hash, with the signing certificate's key. A failure
  is reported InvalidSignature with the security event InvalidFirmwareSignature (L01.FR.03).
- ``check_update_request`` runs the first check on a request, in the shape
  ``FirmwareUpdater(check=…)`` takes.

The flows send the statuses and security events (``FirmwareUpdater``); this module only
judges. It is pure: the caller passes the certificate, the signature, the file's bytes (or
its chunks, read wherever it lies), the trusted roots and ``now``. The cryptography is the
``cryptography`` package's: install ``ocpp-sansio[crypto]``.

L01.FR.04 names RSA-PSS or ECSchnorr for the signature. ``cryptography`` has no EC-Schnorr;
EC keys are verified with ECDSA (DER or raw r‖s), which is what manufacturers' tooling and
other OCPP stations produce and check. RSA keys take RSA-PSS, and by default also PKCS#1
v1.5 (what ``openssl dgst -sha256 -sign`` writes with an RSA key); pass
``accept_rsa_pkcs1v15=False`` to hold to the letter of L01.FR.04.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .errors import needs_extra

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "INVALID_CERTIFICATE_EVENT",
    "INVALID_SIGNATURE_EVENT",
    "CertificateCheck",
    "CertificateVerdict",
    "SignatureCheck",
    "SignatureVerdict",
    "check_signing_certificate",
    "check_update_request",
    "verify_firmware_signature",
]

#: The security event for a certificate that fails the check (L01.FR.02).
INVALID_CERTIFICATE_EVENT = "InvalidFirmwareSigningCertificate"
#: The security event for a signature that fails the check (L01.FR.03).
INVALID_SIGNATURE_EVENT = "InvalidFirmwareSignature"

#: Smallest keys that may sign (A00.FR.502: RSA 2048 bits; A00.FR.503: EC 224 bits).
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224

Pem = str | bytes
Firmware = bytes | bytearray | memoryview | Iterable[bytes]


class CertificateVerdict(enum.Enum):
    VALID = "Valid"
    #: Not a PEM-encoded X.509 certificate (A00.FR.507).
    MALFORMED = "Malformed"
    EXPIRED = "Expired"
    NOT_YET_VALID = "NotYetValid"
    #: Not issued by an installed ManufacturerRootCertificate, or none is installed.
    UNTRUSTED = "Untrusted"
    #: Listed in a revocation list of the root that issued it.
    REVOKED = "Revoked"
    #: May not sign firmware: a key too weak or of a kind L01.FR.04 does not name, or a
    #: key usage without digital signatures.
    UNSUITABLE = "Unsuitable"


@attrs.frozen
class CertificateCheck:
    verdict: CertificateVerdict
    reason: str

    @property
    def valid(self) -> bool:
        return self.verdict is CertificateVerdict.VALID

    @property
    def update_firmware_status(self) -> str | None:
        """The answer to UpdateFirmware / SignedUpdateFirmware this calls for: None (go on),
        RevokedCertificate, or InvalidCertificate (L01.FR.22; 1.6 security L01.FR.24/25)."""
        if self.valid:
            return None
        if self.verdict is CertificateVerdict.REVOKED:
            return "RevokedCertificate"
        return "InvalidCertificate"


class SignatureVerdict(enum.Enum):
    VALID = "Valid"
    #: The signature does not match the file and the certificate's key.
    INVALID = "Invalid"
    #: The update carries no signature ("a signature is missing entirely", L01).
    MISSING = "Missing"
    #: Not base64, or the certificate cannot be read.
    MALFORMED = "Malformed"
    #: The certificate's key is of a kind L01.FR.04 does not name.
    UNSUPPORTED = "Unsupported"


@attrs.frozen
class SignatureCheck:
    verdict: SignatureVerdict
    reason: str

    @property
    def valid(self) -> bool:
        return self.verdict is SignatureVerdict.VALID

    @property
    def firmware_status(self) -> str:
        """SignatureVerified, or InvalidSignature for any failure (L01.FR.03/04)."""
        return "SignatureVerified" if self.valid else "InvalidSignature"


def _require_cryptography() -> None:
    with needs_extra("crypto", needed_by="checking firmware signatures"):
        import cryptography.x509  # noqa: F401


def _as_bytes(pem: Pem) -> bytes:
    return pem.encode() if isinstance(pem, str) else pem


def _load_roots(trusted_roots: Iterable[Pem]) -> list[x509.Certificate]:
    from cryptography import x509

    roots: list[x509.Certificate] = []
    for index, pem in enumerate(trusted_roots):
        try:
            roots += x509.load_pem_x509_certificates(_as_bytes(pem))
        except ValueError as exc:
            raise ValueError(f"trusted root {index} is not a PEM certificate: {exc}") from exc
    return roots


def _issuing_root(
    certificate: x509.Certificate, roots: list[x509.Certificate]
) -> x509.Certificate | None:
    from cryptography.exceptions import InvalidSignature

    for root in roots:
        if certificate.issuer != root.subject:
            continue
        try:
            certificate.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return root
    return None


def _validity(certificate: x509.Certificate, now: datetime, what: str) -> CertificateCheck | None:
    if now < certificate.not_valid_before_utc:
        return CertificateCheck(
            CertificateVerdict.NOT_YET_VALID,
            f"{what} is valid from {certificate.not_valid_before_utc.isoformat()} only",
        )
    if now > certificate.not_valid_after_utc:
        return CertificateCheck(
            CertificateVerdict.EXPIRED,
            f"{what} expired at {certificate.not_valid_after_utc.isoformat()}",
        )
    return None


def _unsuitable(certificate: x509.Certificate) -> str | None:
    """Why the certificate may not sign firmware, if it may not."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"an RSA key of {key.key_size} bits (A00.FR.502: at least {MIN_RSA_BITS})"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            return f"an EC key of {key.curve.key_size} bits (A00.FR.503: at least {MIN_EC_BITS})"
    else:
        return f"a {type(key).__name__} key (L01.FR.04: RSA or elliptic curve)"
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.digital_signature:
        return "its key usage excludes digital signatures (A00.FR.512)"
    return None


def _revoked(
    certificate: x509.Certificate, root: x509.Certificate, crls: Iterable[Pem]
) -> str | None:
    """Which revocation list of ``root`` lists the certificate, if one does. Lists that the
    root did not sign are not believed."""
    from cryptography import x509

    for index, pem in enumerate(crls):
        try:
            crl = x509.load_pem_x509_crl(_as_bytes(pem))
        except ValueError as exc:
            raise ValueError(f"revocation list {index} is not a PEM CRL: {exc}") from exc
        if crl.issuer != root.subject or not crl.is_signature_valid(
            root.public_key()  # type: ignore[arg-type]
        ):
            continue
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            return f"revoked at {entry.revocation_date_utc.isoformat()} (revocation list {index})"
    return None


def check_signing_certificate(
    certificate: Pem,
    trusted_roots: Iterable[Pem],
    now: datetime,
    *,
    crls: Iterable[Pem] = (),
) -> CertificateCheck:
    """Judge a Firmware Signing certificate before accepting the update (L01.FR.21).

    ``certificate``: the request's signingCertificate (PEM; only its first certificate
    counts). ``trusted_roots``: the installed ManufacturerRootCertificates (PEM each).
    ``now``: the station's time, timezone-aware. ``crls``: revocation lists (PEM) the
    station holds; one counts only if the issuing root signed it. A malformed root or list
    is the station's own mistake and raises ValueError.
    """
    _require_cryptography()
    from cryptography import x509

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    roots = _load_roots(trusted_roots)
    try:
        leaf = x509.load_pem_x509_certificates(_as_bytes(certificate))[0]
    except ValueError as exc:
        return CertificateCheck(
            CertificateVerdict.MALFORMED, f"not a PEM X.509 certificate (A00.FR.507): {exc}"
        )
    if not roots:
        return CertificateCheck(
            CertificateVerdict.UNTRUSTED,
            "no ManufacturerRootCertificate is installed: no signed firmware can be accepted",
        )
    root = _issuing_root(leaf, roots)
    if root is None:
        return CertificateCheck(
            CertificateVerdict.UNTRUSTED,
            f"issued by {leaf.issuer.rfc4514_string()!r}, which is no installed "
            "ManufacturerRootCertificate (or its signature does not verify); the manufacturer "
            "uses no intermediate certificates (L01 remarks)",
        )
    verdict = _validity(leaf, now, "the signing certificate") or _validity(
        root, now, "the ManufacturerRootCertificate that issued it"
    )
    if verdict is not None:
        return verdict
    unsuitable = _unsuitable(leaf)
    if unsuitable is not None:
        return CertificateCheck(
            CertificateVerdict.UNSUITABLE, f"the certificate may not sign firmware: {unsuitable}"
        )
    revoked = _revoked(leaf, root, crls)
    if revoked is not None:
        return CertificateCheck(
            CertificateVerdict.REVOKED, f"the signing certificate was {revoked}"
        )
    return CertificateCheck(
        CertificateVerdict.VALID, f"issued by {root.subject.rfc4514_string()!r}, valid at {now}"
    )


def _chunks(firmware: Firmware) -> Iterable[bytes]:
    if isinstance(firmware, bytes | bytearray | memoryview):
        return (bytes(firmware),)
    return firmware


def verify_firmware_signature(
    certificate: Pem,
    signature: str | None,
    firmware: Firmware,
    *,
    accept_rsa_pkcs1v15: bool = True,
) -> SignatureCheck:
    """Check the request's base64 ``signature`` over the whole downloaded ``firmware`` (its
    bytes, or an iterable of chunks) with the key of the signing ``certificate``: SHA-256,
    then ECDSA for an EC key, RSA-PSS for an RSA key (L01.FR.04, L01.FR.12).
    """
    _require_cryptography()
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    if signature is None or not signature.strip():
        return SignatureCheck(SignatureVerdict.MISSING, "the update carries no signature")
    try:
        raw = base64.b64decode("".join(signature.split()), validate=True)
    except binascii.Error as exc:
        return SignatureCheck(SignatureVerdict.MALFORMED, f"the signature is not base64: {exc}")
    try:
        key = x509.load_pem_x509_certificates(_as_bytes(certificate))[0].public_key()
    except ValueError as exc:
        return SignatureCheck(
            SignatureVerdict.MALFORMED, f"the signing certificate cannot be read: {exc}"
        )
    digest = hashes.Hash(hashes.SHA256())
    for chunk in _chunks(firmware):
        digest.update(chunk)
    hashed = digest.finalize()
    prehashed = utils.Prehashed(hashes.SHA256())

    if isinstance(key, ec.EllipticCurvePublicKey):
        candidates = [raw]
        width = (key.curve.key_size + 7) // 8
        if len(raw) == 2 * width:  # raw r‖s (IEEE P1363) rather than DER
            r, s = int.from_bytes(raw[:width], "big"), int.from_bytes(raw[width:], "big")
            candidates.append(utils.encode_dss_signature(r, s))
        for candidate in candidates:
            try:
                key.verify(candidate, hashed, ec.ECDSA(prehashed))
            except InvalidSignature:
                continue
            return SignatureCheck(SignatureVerdict.VALID, "ECDSA with SHA-256 over the file")
        return SignatureCheck(
            SignatureVerdict.INVALID, "the ECDSA signature does not match the file's SHA-256"
        )
    if isinstance(key, rsa.RSAPublicKey):
        schemes: list[tuple[str, padding.AsymmetricPadding]] = [
            (
                "RSA-PSS",
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            )
        ]
        if accept_rsa_pkcs1v15:
            schemes.append(("RSA PKCS#1 v1.5", padding.PKCS1v15()))
        for name, scheme in schemes:
            try:
                key.verify(raw, hashed, scheme, prehashed)
            except InvalidSignature:
                continue
            return SignatureCheck(SignatureVerdict.VALID, f"{name} with SHA-256 over the file")
        names = " or ".join(name for name, _ in schemes)
        return SignatureCheck(
            SignatureVerdict.INVALID, f"no {names} signature matches the file's SHA-256"
        )
    return SignatureCheck(
        SignatureVerdict.UNSUPPORTED,
        f"a {type(key).__name__} key cannot sign firmware (L01.FR.04: RSA or elliptic curve)",
    )


def check_update_request(
    request: Any,
    trusted_roots: Iterable[Pem],
    now: datetime,
    *,
    require_signed: bool = False,
    crls: Iterable[Pem] = (),
) -> str | None:
    """The verdict ``FirmwareUpdater(check=…)`` wants for an UpdateFirmware (2.x) or
    SignedUpdateFirmware (1.6) request: None to accept, else the status to answer.

    A signing certificate, when the request has one, is checked (L01.FR.21/22). With
    ``require_signed`` (a station that installs signed firmware only) a request without
    both a certificate and a signature is Rejected: installing it would skip the signature
    check. 1.6 UpdateFirmware has neither; ``FirmwareUpdater(accept_unsigned_1_6=False)``
    refuses it (1.6 security L01.FR.20).
    """
    firmware = getattr(request, "firmware", None)
    certificate = getattr(firmware, "signing_certificate", None)
    signature = getattr(firmware, "signature", None)
    if certificate is not None:
        status = check_signing_certificate(certificate, trusted_roots, now, crls=crls)
        if not status.valid:
            return status.update_firmware_status
    if require_signed and firmware is not None and (certificate is None or signature is None):
        return "Rejected"
    return None
