"""Loopback throughput of adapters/transfer.py and of the firmware signature check.

Downloads and uploads one file over HTTP, HTTPS, FTP and FTPS against the test servers of
tests/_transferkit.py (127.0.0.1 only), then verifies an ECDSA signature over it. The
point is to show the transfer code adds nothing a station would notice: its links are
far slower than loopback.

Run: ``python benchmarks/transfer.py [--mebibytes 64]``. Figures: docs/transfer.md.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_sansio.adapters.transfer import download, file_chunks, upload
from ocpp_sansio.firmware_signature import verify_firmware_signature

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _transferkit import (
    PASSWORD,
    USER,
    HttpFiles,
    ftp_server,
    http_server,
    server_tls_context,
)


def signing_certificate(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Firmware Signing")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mebibytes", type=int, default=64)
    size = parser.parse_args().mebibytes * 1024 * 1024
    logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
    logging.getLogger("pyftpdlib").propagate = False

    data = os.urandom(size)
    work = Path(tempfile.mkdtemp())
    ca = trustme.CA()
    ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_pem = work / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    files = HttpFiles()
    files.files["fw.bin"] = data
    root = work / "ftp"
    root.mkdir()
    (root / "fw.bin").write_bytes(data)
    label = f"{size // (1024 * 1024)} MiB"

    def timed(what: str, run: Callable[[], object]) -> None:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        print(f"{what:32s} {seconds:6.2f} s {size / seconds / 1e6:8.1f} MB/s")

    with (
        http_server(files) as http,
        http_server(files, server_tls_context(ca)) as https,
        ftp_server(root) as ftp,
        ftp_server(root, tls_certfile=server_pem) as ftps,
    ):
        login = f"{USER}:{PASSWORD}@"
        target = work / "fw.bin"
        timed(
            f"HTTP download {label}",
            lambda: download(f"{http}/files/fw.bin", target, max_bytes=size),
        )
        timed(
            f"HTTPS download {label}",
            lambda: download(f"{https}/files/fw.bin", target, ca_file=ca_file, max_bytes=size),
        )
        timed(f"FTP download {label}", lambda: download(f"{ftp}/fw.bin", target, max_bytes=size))
        timed(
            f"FTPS download {label}",
            lambda: download(
                f"ftps://{login}{ftps[7:]}/fw.bin", target, ca_file=ca_file, max_bytes=size
            ),
        )
        timed(f"HTTP PUT upload {label}", lambda: upload(target, f"{http}/upload/up.bin"))
        timed(
            f"HTTP POST upload {label}",
            lambda: upload(target, f"{http}/upload/up.bin", method="POST"),
        )
        timed(f"FTP STOR upload {label}", lambda: upload(target, f"ftp://{login}{ftp[6:]}/up.bin"))

    key = ec.generate_private_key(ec.SECP256R1())
    signature = base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    certificate = signing_certificate(key)
    timed(
        f"verify signature, {label} file",
        lambda: verify_firmware_signature(certificate, signature, file_chunks(target)),
    )


if __name__ == "__main__":
    main()
