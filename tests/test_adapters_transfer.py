"""adapters/transfer.py against real servers on 127.0.0.1: HTTP, HTTPS (a trustme CA), FTP
and FTPS (pyftpdlib). One attempt per call; every failure says why."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from _flowkit import Rig
from _transferkit import (
    HANG,
    PASSWORD,
    USER,
    HttpFiles,
    elapsed,
    ftp_server,
    http_server,
    multipart_file,
    refusing_port,
    server_tls_context,
    silent_port,
)

from ocpp_sansio.adapters.transfer import (
    TransferError,
    TransferFailure,
    _body_chunks,
    download,
    download_async,
    file_chunks,
    upload,
    upload_async,
    upload_url,
)
from ocpp_sansio.flows._base import build
from ocpp_sansio.flows.logs import DiagnosticsUploader, LogUploader, UploadDue

FIRMWARE = bytes(range(256)) * 1024  # 256 KiB
#: Time limit for the tests that wait for one to pass.
SHORT = 0.5


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def files() -> HttpFiles:
    served = HttpFiles()
    served.files["fw.bin"] = FIRMWARE
    return served


@pytest.fixture
def http_base(files: HttpFiles) -> Iterator[str]:
    with http_server(files) as base:
        yield base


@pytest.fixture
def https_base(files: HttpFiles, ca: trustme.CA) -> Iterator[str]:
    with http_server(files, server_tls_context(ca)) as base:
        yield base


@pytest.fixture
def ftp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ftp")
    (root / "fw.bin").write_bytes(FIRMWARE)
    return root


@pytest.fixture
def ftp_base(ftp_root: Path) -> Iterator[str]:
    with ftp_server(ftp_root) as base:
        yield base


@pytest.fixture
def ftps_base(
    ftp_root: Path, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    certfile = tmp_path_factory.mktemp("cert") / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certfile))
    with ftp_server(ftp_root, tls_certfile=certfile) as base:
        yield base


def failure(excinfo: pytest.ExceptionInfo[TransferError]) -> TransferFailure:
    return excinfo.value.failure


def nothing_left_in(folder: Path) -> bool:
    return not any(folder.iterdir())


# --- HTTP downloads ----------------------------------------------------------------------------


def test_http_download_writes_the_file(http_base: str, tmp_path: Path) -> None:
    target = tmp_path / "fw.bin"
    assert download(f"{http_base}/files/fw.bin", target, timeout=HANG) == len(FIRMWARE)
    assert target.read_bytes() == FIRMWARE
    assert [p.name for p in tmp_path.iterdir()] == ["fw.bin"]


def test_http_download_of_a_chunked_body(http_base: str, tmp_path: Path) -> None:
    target = tmp_path / "fw.bin"
    assert download(f"{http_base}/chunked/fw.bin", target, timeout=HANG) == len(FIRMWARE)
    assert target.read_bytes() == FIRMWARE


def test_http_download_follows_a_redirect(http_base: str, tmp_path: Path) -> None:
    target = tmp_path / "fw.bin"
    download(f"{http_base}/redirect/files/fw.bin", target, timeout=HANG)
    assert target.read_bytes() == FIRMWARE


def test_http_404_is_a_status_failure_and_leaves_nothing(http_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/files/missing.bin", tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.STATUS
    assert excinfo.value.status == 404
    assert "404" in str(excinfo.value)
    assert nothing_left_in(tmp_path)


def test_http_connection_refused(tmp_path: Path) -> None:
    with refusing_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"http://127.0.0.1:{port}/fw.bin", tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.REFUSED
    assert nothing_left_in(tmp_path)


def test_an_unknown_host_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download("http://no-such-host.invalid/fw.bin", tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.UNREACHABLE


def test_http_silent_server_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with silent_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"http://127.0.0.1:{port}/fw.bin", tmp_path / "fw.bin", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT
    assert elapsed(start) < SHORT + 1


def test_the_time_limit_bounds_the_whole_transfer_not_each_read(
    http_base: str, tmp_path: Path
) -> None:
    # Every read succeeds (a byte per 0.05 s) but 1000 bytes would take 50 s.
    start = time.monotonic()
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/drip/1000", tmp_path / "fw.bin", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT
    assert elapsed(start) < SHORT + 1
    assert nothing_left_in(tmp_path)


def test_http_stall_after_the_headers_times_out(http_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/stall/fw.bin", tmp_path / "fw.bin", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT


def test_http_announced_size_over_the_limit_is_refused_before_reading(
    http_base: str, tmp_path: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/files/fw.bin", tmp_path / "fw.bin", max_bytes=1000, timeout=HANG)
    assert failure(excinfo) is TransferFailure.TOO_BIG
    assert "announces" in excinfo.value.detail
    assert nothing_left_in(tmp_path)


def test_http_unannounced_size_over_the_limit_stops_the_download(
    http_base: str, tmp_path: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/chunked/fw.bin", tmp_path / "fw.bin", max_bytes=10_000, timeout=HANG)
    assert failure(excinfo) is TransferFailure.TOO_BIG
    assert nothing_left_in(tmp_path)


def test_http_body_cut_short_is_broken(http_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/short/fw.bin", tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.BROKEN
    assert nothing_left_in(tmp_path)


def test_a_failed_download_keeps_the_previous_file(http_base: str, tmp_path: Path) -> None:
    target = tmp_path / "fw.bin"
    target.write_bytes(b"old image")
    with pytest.raises(TransferError):
        download(f"{http_base}/short/fw.bin", target, timeout=HANG)
    assert target.read_bytes() == b"old image"


def test_cancel_stops_a_download_between_chunks(http_base: str, tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/drip/1000", tmp_path / "fw.bin", timeout=HANG, cancel=cancel)
    assert failure(excinfo) is TransferFailure.CANCELLED
    assert elapsed(start) < 1
    assert nothing_left_in(tmp_path)


# --- HTTPS --------------------------------------------------------------------------------------


def test_https_download_with_the_ca_file(https_base: str, ca_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "fw.bin"
    assert download(f"{https_base}/files/fw.bin", target, ca_file=ca_file, timeout=HANG)
    assert target.read_bytes() == FIRMWARE


def test_https_verifies_the_server_certificate(https_base: str, tmp_path: Path) -> None:
    # The test CA is not among the system's: the certificate must not verify.
    with pytest.raises(TransferError) as excinfo:
        download(f"{https_base}/files/fw.bin", tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.TLS
    assert "certificate" in excinfo.value.detail
    assert nothing_left_in(tmp_path)


def test_https_404(https_base: str, ca_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{https_base}/files/nope", tmp_path / "x", ca_file=ca_file, timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.STATUS, 404)


def test_https_redirect_to_http_is_refused(
    https_base: str, http_base: str, ca_file: Path, tmp_path: Path
) -> None:
    location = f"{https_base}/redirect/url={http_base}/files/fw.bin"
    with pytest.raises(TransferError) as excinfo:
        download(location, tmp_path / "fw.bin", ca_file=ca_file, timeout=HANG)
    assert failure(excinfo) is TransferFailure.REDIRECT


def test_https_to_a_plain_http_server_fails_the_handshake(http_base: str, tmp_path: Path) -> None:
    location = http_base.replace("http://", "https://") + "/files/fw.bin"
    with pytest.raises(TransferError) as excinfo:
        download(location, tmp_path / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.TLS


def test_https_upload(https_base: str, files: HttpFiles, ca_file: Path, tmp_path: Path) -> None:
    source = tmp_path / "log.txt"
    source.write_bytes(b"secure log")
    upload(source, f"{https_base}/upload/log.txt", ca_file=ca_file, timeout=HANG)
    assert files.received["log.txt"][2] == b"secure log"


# --- HTTP uploads -------------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "diagnostics-7.log"
    path.write_bytes(b"line\n" * 5000)
    return path


def test_http_put_upload(http_base: str, files: HttpFiles, log_file: Path) -> None:
    assert upload(log_file, f"{http_base}/upload/d.log", timeout=HANG) == log_file.stat().st_size
    method, headers, body = files.received["d.log"]
    assert (method, body) == ("PUT", log_file.read_bytes())
    assert headers["Content-Type"] == "application/octet-stream"


def test_N01_FR_19_post_upload_is_multipart_with_type_and_file_name(
    http_base: str, files: HttpFiles, log_file: Path
) -> None:
    upload(log_file, f"{http_base}/upload/d.log", method="POST", timeout=HANG)
    method, headers, body = files.received["d.log"]
    assert method == "POST"
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    field, filename, content = multipart_file(headers, body)
    assert (field, filename, content) == ("uploadfile", "diagnostics-7.log", log_file.read_bytes())
    assert b"Content-Type: application/octet-stream" in body


def test_post_upload_takes_the_file_name_it_is_given(
    http_base: str, files: HttpFiles, log_file: Path
) -> None:
    upload(log_file, f"{http_base}/upload/x", method="POST", filename='odd "name".log')
    assert multipart_file(*files.received["x"][1:])[1] == 'odd "name".log'


def test_N01_FR_25_credentials_in_the_location_go_as_basic_auth(
    http_base: str, files: HttpFiles, log_file: Path
) -> None:
    location = f"http://{USER}:{PASSWORD}@{http_base[7:]}/private/d.log"
    upload(log_file, location, timeout=HANG)
    assert files.received["d.log"][2] == log_file.read_bytes()


def test_http_upload_denied_reports_permission_denied(http_base: str, log_file: Path) -> None:
    location = f"http://{USER}:wrong@{http_base[7:]}/private/d.log"
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, location, timeout=HANG)
    error = excinfo.value
    assert (error.failure, error.status, error.log_status) == (
        TransferFailure.DENIED,
        401,
        "PermissionDenied",
    )
    assert "wrong" not in str(error)  # the password never reaches a message


def test_http_upload_forbidden(http_base: str, log_file: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, f"{http_base}/readonly/d.log", timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.DENIED, 403)


def test_http_upload_method_not_allowed_is_not_supported_operation(
    http_base: str, log_file: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, f"{http_base}/no-put/d.log", timeout=HANG)
    assert failure(excinfo) is TransferFailure.UNSUPPORTED
    assert excinfo.value.log_status == "NotSupportedOperation"


def test_N01_FR_30_an_upload_follows_no_redirect(
    http_base: str, files: HttpFiles, log_file: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, f"{http_base}/redirect/d.log", timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.REDIRECT, 307)
    assert excinfo.value.log_status == "UploadFailure"
    assert files.received == {}


def test_http_upload_refused_early_reports_the_servers_answer(
    http_base: str, tmp_path: Path
) -> None:
    # The server answers 413 without reading; the body is larger than socket buffers.
    big = tmp_path / "big.log"
    big.write_bytes(os.urandom(16 * 1024 * 1024))
    with pytest.raises(TransferError) as excinfo:
        upload(big, f"{http_base}/early/big.log", timeout=HANG)
    assert failure(excinfo) in (TransferFailure.STATUS, TransferFailure.BROKEN)
    if failure(excinfo) is TransferFailure.STATUS:
        assert excinfo.value.status == 413
    assert excinfo.value.log_status == "UploadFailure"


def test_http_upload_to_a_refusing_port(log_file: Path) -> None:
    with refusing_port() as port, pytest.raises(TransferError) as excinfo:
        upload(log_file, f"http://127.0.0.1:{port}/upload/d.log", timeout=HANG)
    assert failure(excinfo) is TransferFailure.REFUSED
    assert excinfo.value.log_status == "UploadFailure"


def test_http_upload_to_a_silent_server_times_out(log_file: Path) -> None:
    with silent_port() as port, pytest.raises(TransferError) as excinfo:
        upload(log_file, f"http://127.0.0.1:{port}/upload/d.log", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT


def test_upload_of_a_missing_file_is_a_local_failure(http_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(tmp_path / "absent.log", f"{http_base}/upload/x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.LOCAL


# --- FTP ----------------------------------------------------------------------------------------


def test_ftp_anonymous_download(ftp_base: str, tmp_path: Path) -> None:
    target = tmp_path / "got.bin"
    assert download(f"{ftp_base}/fw.bin", target, timeout=HANG) == len(FIRMWARE)
    assert target.read_bytes() == FIRMWARE


def test_ftp_download_with_credentials(ftp_base: str, tmp_path: Path) -> None:
    target = tmp_path / "got.bin"
    download(f"ftp://{USER}:{PASSWORD}@{ftp_base[6:]}/fw.bin", target, timeout=HANG)
    assert target.read_bytes() == FIRMWARE


def test_ftp_missing_file_is_a_550_status(ftp_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{ftp_base}/missing.bin", tmp_path / "got.bin", timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.STATUS, 550)
    assert nothing_left_in(tmp_path)


def test_ftp_wrong_password_is_denied(ftp_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"ftp://{USER}:nope@{ftp_base[6:]}/fw.bin", tmp_path / "x", timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.DENIED, 530)
    assert "nope" not in str(excinfo.value)


def test_ftp_connection_refused(tmp_path: Path) -> None:
    with refusing_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"ftp://127.0.0.1:{port}/fw.bin", tmp_path / "x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.REFUSED


def test_ftp_silent_server_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with silent_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"ftp://127.0.0.1:{port}/fw.bin", tmp_path / "x", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT
    assert elapsed(start) < SHORT + 1


def test_ftp_size_over_the_limit_is_refused_before_reading(ftp_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{ftp_base}/fw.bin", tmp_path / "x", max_bytes=1000, timeout=HANG)
    assert failure(excinfo) is TransferFailure.TOO_BIG
    assert "announces" in excinfo.value.detail
    assert nothing_left_in(tmp_path)


def test_ftp_without_size_stops_once_over_the_limit(ftp_root: Path, tmp_path: Path) -> None:
    with ftp_server(ftp_root, without_size=True) as base, pytest.raises(TransferError) as excinfo:
        download(f"{base}/fw.bin", tmp_path / "x", max_bytes=10_000, timeout=HANG)
    assert failure(excinfo) is TransferFailure.TOO_BIG
    assert "arrived" in excinfo.value.detail
    assert nothing_left_in(tmp_path)


def test_ftp_upload(ftp_base: str, ftp_root: Path, log_file: Path) -> None:
    location = f"ftp://{USER}:{PASSWORD}@{ftp_base[6:]}/d.log"
    assert upload(log_file, location, timeout=HANG) == log_file.stat().st_size
    assert (ftp_root / "d.log").read_bytes() == log_file.read_bytes()


def test_ftp_upload_without_write_permission_fails(
    ftp_base: str, ftp_root: Path, log_file: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, f"{ftp_base}/d.log", timeout=HANG)  # anonymous: read only
    assert failure(excinfo) is TransferFailure.STATUS
    assert excinfo.value.status == 550
    assert not (ftp_root / "d.log").exists()


def test_ftp_upload_with_a_wrong_password_is_permission_denied(
    ftp_base: str, log_file: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, f"ftp://{USER}:nope@{ftp_base[6:]}/d.log", timeout=HANG)
    assert excinfo.value.log_status == "PermissionDenied"


def test_ftp_upload_to_a_refusing_port(log_file: Path) -> None:
    with refusing_port() as port, pytest.raises(TransferError) as excinfo:
        upload(log_file, f"ftp://127.0.0.1:{port}/d.log", timeout=HANG)
    assert failure(excinfo) is TransferFailure.REFUSED


# --- FTPS ---------------------------------------------------------------------------------------


def test_ftps_download(ftps_base: str, ca_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "got.bin"
    location = f"ftps://{USER}:{PASSWORD}@{ftps_base[7:]}/fw.bin"
    assert download(location, target, ca_file=ca_file, timeout=HANG) == len(FIRMWARE)
    assert target.read_bytes() == FIRMWARE


def test_ftps_upload(ftps_base: str, ftp_root: Path, ca_file: Path, log_file: Path) -> None:
    location = f"ftps://{USER}:{PASSWORD}@{ftps_base[7:]}/d.log"
    upload(log_file, location, ca_file=ca_file, timeout=HANG)
    assert (ftp_root / "d.log").read_bytes() == log_file.read_bytes()


def test_ftps_verifies_the_server_certificate(ftps_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{ftps_base}/fw.bin", tmp_path / "x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.TLS


def test_ftps_missing_file(ftps_base: str, ca_file: Path, tmp_path: Path) -> None:
    location = f"ftps://{USER}:{PASSWORD}@{ftps_base[7:]}/missing.bin"
    with pytest.raises(TransferError) as excinfo:
        download(location, tmp_path / "x", ca_file=ca_file, timeout=HANG)
    assert (failure(excinfo), excinfo.value.status) == (TransferFailure.STATUS, 550)


# --- locations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    ["sftp://127.0.0.1/fw.bin", "http:///fw.bin", "http://127.0.0.1:99999/x", "ftp://127.0.0.1/"],
)
def test_unusable_locations(location: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(location, tmp_path / "x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.LOCATION


def test_a_missing_destination_folder_is_a_local_failure(http_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{http_base}/files/fw.bin", tmp_path / "no" / "fw.bin", timeout=HANG)
    assert failure(excinfo) is TransferFailure.LOCAL


def test_limits_must_make_sense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        download("http://127.0.0.1/x", tmp_path / "x", timeout=0)
    with pytest.raises(ValueError, match="max_bytes"):
        download("http://127.0.0.1/x", tmp_path / "x", max_bytes=-1)


def test_N01_FR_21_a_location_ending_in_a_slash_gets_the_file_name() -> None:
    assert (
        upload_url("ftp://csms.example/logs/", "log-3.zip") == "ftp://csms.example/logs/log-3.zip"
    )


def test_N01_FR_29_any_other_location_is_used_as_received() -> None:
    location = "https://csms.example/upload?token=abc"
    assert upload_url(location, "log-3.zip") == location


def test_file_chunks_reads_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "fw.bin"
    path.write_bytes(FIRMWARE)
    chunks = list(file_chunks(path, chunk_size=1000))
    assert b"".join(chunks) == FIRMWARE
    assert max(len(chunk) for chunk in chunks) == 1000


# --- the async API ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_download_async(http_base: str, tmp_path: Path, anyio_backend: str) -> None:
    target = tmp_path / "fw.bin"
    assert await download_async(f"{http_base}/files/fw.bin", target, timeout=HANG) == len(FIRMWARE)
    assert target.read_bytes() == FIRMWARE
    with pytest.raises(TransferError) as excinfo:
        await download_async(f"{http_base}/files/none", tmp_path / "x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.STATUS


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_upload_async(
    ftp_base: str, ftp_root: Path, log_file: Path, anyio_backend: str
) -> None:
    location = f"ftp://{USER}:{PASSWORD}@{ftp_base[6:]}/d.log"
    await upload_async(log_file, location, timeout=HANG)
    assert (ftp_root / "d.log").read_bytes() == log_file.read_bytes()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_cancelling_an_async_download_returns_at_once_and_cleans_up(
    http_base: str, tmp_path: Path, anyio_backend: str
) -> None:
    target = tmp_path / "fw.bin"
    start = time.monotonic()
    with anyio.move_on_after(0.2):
        await download_async(f"{http_base}/drip/1000", target, timeout=HANG)
    assert elapsed(start) < 0.5
    # The worker notices at its next chunk (a byte per 0.05 s) and removes its part file.
    with anyio.fail_after(2):
        while not nothing_left_in(tmp_path):
            await anyio.sleep(0.02)
    assert not target.exists()


# --- the pieces in the upload flows -------------------------------------------------------------


def run_upload(uploader: LogUploader | DiagnosticsUploader, rig: Rig, source: Path) -> None:
    """What the upload code does on UploadDue: upload for real, report."""
    (due,) = [e for e in uploader.events() if isinstance(e, UploadDue)]
    uploader.upload_started(rig.now)
    try:
        upload(source, upload_url(due.location, due.filename), filename=due.filename, timeout=HANG)
    except TransferError as error:
        if isinstance(uploader, LogUploader):
            uploader.upload_failed(rig.now, error.log_status)
        else:
            uploader.upload_failed(rig.now)
        return
    uploader.uploaded(rig.now)


def log_request(rig: Rig, location: str, *, retries: int = 0) -> Any:
    m = rig.m
    return build(
        m.GetLogRequest,
        log=m.LogParameters(remote_location=location),
        log_type="DiagnosticsLog",
        request_id=5,
        retries=retries,
        retry_interval=10,
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_N01_FR_09_a_real_log_upload_reports_Uploaded(
    version: str, http_base: str, files: HttpFiles, log_file: Path
) -> None:
    rig = Rig(version)
    uploader = LogUploader(rig.station)
    rig.station_flows.append(uploader)
    rig.csms_sends(log_request(rig, f"{http_base}/upload/"))
    run_upload(uploader, rig, log_file)
    rig.flush()
    assert rig.statuses("LogStatusNotification") == ["Uploading", "Uploaded"]
    # N01.FR.21: the folder location got the file name of the GetLog answer.
    assert files.received["DiagnosticsLog-5.log"][2] == log_file.read_bytes()


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_N01_FR_10_a_refused_log_upload_reports_PermissionDenied_after_the_retries(
    version: str, http_base: str, log_file: Path
) -> None:
    rig = Rig(version)
    uploader = LogUploader(rig.station)
    rig.station_flows.append(uploader)
    rig.csms_sends(log_request(rig, f"{http_base}/readonly/", retries=1))
    run_upload(uploader, rig, log_file)
    rig.advance(10)  # retryInterval
    run_upload(uploader, rig, log_file)
    rig.flush()
    assert rig.statuses("LogStatusNotification") == ["Uploading", "Uploading", "PermissionDenied"]


def test_1_6_diagnostics_upload_over_ftp(ftp_base: str, ftp_root: Path, log_file: Path) -> None:
    rig = Rig("1.6")
    uploader = DiagnosticsUploader(rig.station)
    rig.station_flows.append(uploader)
    location = f"ftp://{USER}:{PASSWORD}@{ftp_base[6:]}/"
    rig.csms_sends(rig.m.GetDiagnosticsRequest(location=location))
    run_upload(uploader, rig, log_file)
    rig.flush()
    assert rig.statuses("DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    assert (ftp_root / "diagnostics.log").read_bytes() == log_file.read_bytes()


def test_1_6_diagnostics_upload_that_fails_reports_UploadFailed(
    ftp_base: str, log_file: Path
) -> None:
    rig = Rig("1.6")
    uploader = DiagnosticsUploader(rig.station)
    rig.station_flows.append(uploader)
    location = f"ftp://{USER}:wrong@{ftp_base[6:]}/"
    rig.csms_sends(rig.m.GetDiagnosticsRequest(location=location, retries=0))
    run_upload(uploader, rig, log_file)
    rig.flush()
    assert rig.statuses("DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]


def test_an_unreadable_ca_file_is_a_local_failure(https_base: str, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(f"{https_base}/files/fw.bin", tmp_path / "x", ca_file=tmp_path / "none.pem")
    assert failure(excinfo) is TransferFailure.LOCAL
    assert "CA file" in excinfo.value.detail


def test_an_upload_method_must_be_put_or_post(log_file: Path) -> None:
    with pytest.raises(ValueError, match="PUT or POST"):
        upload(log_file, "http://127.0.0.1/x", method="PATCH")  # type: ignore[arg-type]


# --- every scheme: the same failures, the same answers ---------------------------------------

SCHEMES = ["http", "https", "ftp", "ftps"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_reports_a_refused_connection(scheme: str, tmp_path: Path) -> None:
    with refusing_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"{scheme}://127.0.0.1:{port}/fw.bin", tmp_path / "x", timeout=HANG)
    assert failure(excinfo) is TransferFailure.REFUSED


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_times_out_on_a_silent_server(scheme: str, tmp_path: Path) -> None:
    start = time.monotonic()
    with silent_port() as port, pytest.raises(TransferError) as excinfo:
        download(f"{scheme}://127.0.0.1:{port}/fw.bin", tmp_path / "x", timeout=SHORT)
    assert failure(excinfo) is TransferFailure.TIMEOUT
    assert elapsed(start) < SHORT + 1


@pytest.fixture
def bases(http_base: str, https_base: str, ftp_base: str, ftps_base: str) -> dict[str, str]:
    login = f"{USER}:{PASSWORD}@"
    return {
        "http": http_base,
        "https": https_base,
        "ftp": f"ftp://{login}{ftp_base[6:]}",
        "ftps": f"ftps://{login}{ftps_base[7:]}",
    }


def file_url(scheme: str, base: str, name: str) -> str:
    return f"{base}/files/{name}" if scheme.startswith("http") else f"{base}/{name}"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_downloads_and_uploads(
    scheme: str, bases: dict[str, str], ca_file: Path, log_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "fw.bin"
    download(file_url(scheme, bases[scheme], "fw.bin"), target, ca_file=ca_file, timeout=HANG)
    assert target.read_bytes() == FIRMWARE
    where = f"{bases[scheme]}/upload/" if scheme.startswith("http") else f"{bases[scheme]}/"
    assert upload(log_file, upload_url(where, "d.log"), ca_file=ca_file, timeout=HANG) > 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_reports_a_missing_file(
    scheme: str, bases: dict[str, str], ca_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(file_url(scheme, bases[scheme], "nope"), tmp_path / "x", ca_file=ca_file)
    assert failure(excinfo) is TransferFailure.STATUS
    assert excinfo.value.status == (404 if scheme.startswith("http") else 550)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_enforces_the_size_limit(
    scheme: str, bases: dict[str, str], ca_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(TransferError) as excinfo:
        download(
            file_url(scheme, bases[scheme], "fw.bin"),
            tmp_path / "x",
            ca_file=ca_file,
            max_bytes=len(FIRMWARE) - 1,
        )
    assert failure(excinfo) is TransferFailure.TOO_BIG
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_reports_a_refused_upload(
    scheme: str, bases: dict[str, str], ca_file: Path, log_file: Path
) -> None:
    if scheme.startswith("http"):
        location = f"{bases[scheme]}/readonly/d.log"
    else:  # a wrong password
        location = bases[scheme].replace(PASSWORD, "wrong") + "/d.log"
    with pytest.raises(TransferError) as excinfo:
        upload(log_file, location, ca_file=ca_file, timeout=HANG)
    assert failure(excinfo) is TransferFailure.DENIED
    assert excinfo.value.log_status == "PermissionDenied"


def test_an_upload_sends_the_file_as_it_was_when_it_began() -> None:
    # A log that grows during the upload: the announced length is sent, no more.
    growing = io.BytesIO(b"0123456789" + b"appended meanwhile")
    assert b"".join(_body_chunks(growing, 10, "ftp://x/y")) == b"0123456789"


def test_an_upload_of_a_file_that_shrank_is_a_local_failure() -> None:
    with pytest.raises(TransferError) as excinfo:
        list(_body_chunks(io.BytesIO(b"01234"), 10, "ftp://x/y"))
    assert failure(excinfo) is TransferFailure.LOCAL
    assert "shrank" in excinfo.value.detail
