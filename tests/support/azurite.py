"""A real Azurite storage emulator for tests (blob service; table service: `AzuriteTable`), installed and run by
the test run itself, on 127.0.0.1.

    from tests.support.azurite import Azurite

    with Azurite() as az:                       # HTTP, shared key (connection string)
        etag = az.put_blob("config", "gateway.yaml", b"...")
        az.blob_service().get_blob_client("config", "gateway.yaml").download_blob().readall()

    with Azurite(oauth=True) as az:             # HTTPS + Azurite's basic OAuth (bearer tokens)
        az.put_blob("config", "gateway.yaml", b"...")
        BlobClient.from_blob_url(az.https_blob_url("config", "gateway.yaml"),
                                 credential=FakeStorageCredential(), **az.client_kwargs())

Azurite is the npm package `azurite`. `ensure_installed()` installs it on first use into the
git-ignored `.cache/azurite/` (about 20-40 s), and reuses it afterwards. Needs `node` and `npm`
on PATH; nothing else. Each `Azurite` has its own port, its own temporary data directory and
(in OAuth mode) its own throwaway self-signed certificate; `stop()` removes them.

Azurite's API version: azure-storage-blob 12.31 speaks a newer REST version than Azurite knows.
The server runs with `--skipApiVersionCheck`, and the clients made here also pin `API_VERSION`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any, Self

from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache" / "azurite"
AZURITE_SPEC = "azurite@3"
INSTALL_TIMEOUT = 300.0

HOST = "127.0.0.1"
# The emulator's well-known development account (public, documented by Microsoft).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Newest REST version Azurite 3.35 accepts (azure-storage-blob 12.31 defaults to a newer one).
API_VERSION = "2025-11-05"
# What a real token for Azure Storage carries, and what Azurite's `--oauth basic` checks.
STORAGE_AUDIENCE = "https://storage.azure.com"
STORAGE_SCOPE = "https://storage.azure.com/.default"


class AzuriteError(RuntimeError):
    """Azurite could not be installed or started."""


# --------------------------------------------------------------------------- install


def _executable() -> Path:
    return CACHE_DIR / "node_modules" / ".bin" / "azurite-blob"


def _stamp() -> Path:
    return CACHE_DIR / ".installed"


def ensure_installed() -> Path:
    """Return the `azurite-blob` executable, installing Azurite into `.cache/azurite/` if missing.

    Idempotent and safe against concurrent test processes (a file lock serialises installs).
    A half-finished install (no stamp file) is wiped and redone.
    """
    exe = _executable()
    if _stamp().is_file() and exe.exists():
        return exe
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise AzuriteError(
            "Azurite is needed by these tests but `node`/`npm` are not on PATH. "
            "Install Node.js (which ships npm), or run `npm install --prefix .cache/azurite azurite@3`."
        )
    CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR.parent / "azurite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp().is_file() and exe.exists():  # another process installed it meanwhile
            return exe
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
        CACHE_DIR.mkdir(parents=True)
        cmd = [
            npm,
            "install",
            "--prefix",
            str(CACHE_DIR),
            AZURITE_SPEC,
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
        ]
        try:
            done = subprocess.run(
                cmd,
                check=False,
                cwd=CACHE_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise AzuriteError(f"`{' '.join(cmd)}` did not finish within {INSTALL_TIMEOUT:.0f} s") from exc
        if done.returncode != 0 or not exe.exists():
            output = (done.stdout + done.stderr).strip()[-3000:]
            raise AzuriteError(f"Installing Azurite failed (exit {done.returncode}): `{' '.join(cmd)}`\n{output}")
        _stamp().write_text(AZURITE_SPEC + "\n")
    return exe


# --------------------------------------------------------------------------- tokens and certificates


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_storage_jwt(
    *,
    audience: str = STORAGE_AUDIENCE,
    issuer: str | None = None,
    tenant_id: str = "72f988bf-0000-4000-8000-000000000000",
    lifetime: float = 3600.0,
    not_before: float | None = None,
) -> tuple[str, int]:
    """An unsigned JWT (`alg: none`) shaped like an Entra ID token for Azure Storage.

    Azurite's `--oauth basic` decodes it without checking the signature and requires:
    `iat`, `nbf`, `exp` present with nbf <= now <= exp; `iss` starting with
    `https://sts.windows.net/` (or the sovereign-cloud equivalents); `aud` equal to
    `https://storage.azure.com[/]`, the storage app id `e406a681-f3d4-42a8-90b6-c2b029497af1`,
    or `https://<account>.blob.core.windows.net[/]`. Returns (token, exp).
    """
    now = int(time.time())
    exp = now + int(lifetime)
    nbf = now - 300 if not_before is None else int(not_before)
    payload = {
        "aud": audience,
        "iss": issuer if issuer is not None else f"https://sts.windows.net/{tenant_id}/",
        "iat": min(now, nbf),
        "nbf": nbf,
        "exp": exp,
        "tid": tenant_id,
        "oid": str(uuid.uuid4()),
        "sub": "aoai-gateway-tests",
        "appid": str(uuid.uuid4()),
        "ver": "1.0",
    }
    header = {"alg": "none", "typ": "JWT"}
    token = ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()), ""])
    return token, exp


class _StorageTokens:
    """Unsigned storage tokens Azurite's basic OAuth accepts, for the sync and the async credential below.

    `scopes` records every scope tuple asked for, so a test can check the caller requested
    `https://storage.azure.com/.default`. Keyword arguments go to `make_storage_jwt`
    (e.g. `audience="https://vault.azure.net"` or `lifetime=-60` to get a token Azurite rejects).
    """

    def __init__(self, **token_options: Any) -> None:
        self.token_options = token_options
        self.scopes: list[tuple[str, ...]] = []

    def _token(self, scopes: tuple[str, ...]) -> AccessToken:
        self.scopes.append(scopes)
        token, exp = make_storage_jwt(**self.token_options)
        return AccessToken(token, exp)


class FakeStorageCredential(_StorageTokens):
    """A TokenCredential (sync) handing out unsigned storage tokens Azurite's basic OAuth accepts."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._token(scopes)

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class AsyncFakeStorageCredential(_StorageTokens):
    """The same, as an AsyncTokenCredential (for `azure.storage.blob.aio` clients)."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._token(scopes)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


def make_self_signed_cert(directory: Path, host: str = HOST) -> tuple[Path, Path]:
    """Write a throwaway self-signed certificate for `host` (IP SAN) and its key; return (cert, key).

    Uses `cryptography`, which azure-storage-blob already depends on.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "azurite-cert.pem", directory / "azurite-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]  # typeshed: Any, as the address depends on the family
        return port


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Azurite:
    """One Azurite blob service on 127.0.0.1 (HTTP + shared key; or HTTPS + basic OAuth + shared key)."""

    def __init__(self, *, oauth: bool = False, startup_timeout: float = 30.0) -> None:
        self.oauth = oauth
        self.startup_timeout = startup_timeout
        self.port = 0
        self.workdir: Path | None = None
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ---- lifecycle

    def start(self) -> Self:
        if self._process is not None:
            return self
        exe = ensure_installed()
        self.workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        if self.oauth:
            self.cert_path, self.key_path = make_self_signed_cert(self.workdir)
        last_error = ""
        try:
            for _ in range(3):  # a freshly probed port can be taken before Azurite binds it
                self.port = _free_port()
                last_error = self._launch(exe)
                if not last_error:
                    atexit.register(self.stop)
                    return self
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise AzuriteError(f"Azurite did not start: {last_error}")

    def _launch(self, exe: Path) -> str:
        assert self.workdir is not None
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        cmd = [
            str(exe),
            "--silent",
            "--disableTelemetry",
            "--location",
            str(data),
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.port),
            "--skipApiVersionCheck",
            "--loose",
        ]
        if self.oauth:
            cmd += ["--cert", str(self.cert_path), "--key", str(self.key_path), "--oauth", "basic"]
        log_path = self.workdir / "azurite.log"
        self._log = log_path.open("ab")
        self._process = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                reason = f"exit {self._process.returncode}: {self.log_tail()}"
                self._reap()
                return reason
            if _port_answers(self.port):
                return ""
            time.sleep(0.05)
        self._reap()
        return f"port {self.port} not answering after {self.startup_timeout:.0f} s: {self.log_tail()}"

    def _reap(self) -> None:
        proc, self._process = self._process, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)  # its own session: the group id is its pid
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Terminate (then kill) Azurite and remove its data directory. Safe to call twice."""
        self._reap()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, chars: int = 2000) -> str:
        if self.workdir is None:
            return ""
        try:
            return (self.workdir / "azurite.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ---- addresses and credentials

    @property
    def scheme(self) -> str:
        return "https" if self.oauth else "http"

    @property
    def account_name(self) -> str:
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        """`http(s)://127.0.0.1:P/devstoreaccount1` (path-style: the account is the first segment)."""
        if not self.port:
            raise AzuriteError("Azurite is not started")
        return f"{self.scheme}://{HOST}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    def blob_url(self, container: str, name: str) -> str:
        return f"{self.blob_endpoint}/{container}/{name}"

    def https_blob_url(self, container: str, name: str) -> str:
        if not self.oauth:
            raise AzuriteError("https_blob_url needs Azurite(oauth=True)")
        return self.blob_url(container, name)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every azure-storage-blob client for this Azurite needs (sync or aio)."""
        kwargs: dict[str, Any] = {"api_version": API_VERSION}
        if self.cert_path is not None:
            kwargs["connection_verify"] = str(self.cert_path)
        return kwargs

    def ca_env(self) -> dict[str, str]:
        """Environment making a child process trust the self-signed certificate (OAuth mode):
        `REQUESTS_CA_BUNDLE` (azure-core's requests transport) and `SSL_CERT_FILE` (OpenSSL's
        default paths, which aiohttp's default SSL context uses). Empty in HTTP mode."""
        if self.cert_path is None:
            return {}
        return {"REQUESTS_CA_BUNDLE": str(self.cert_path), "SSL_CERT_FILE": str(self.cert_path)}

    # ---- helpers

    def blob_service(self, **kwargs: Any) -> BlobServiceClient:
        """A shared-key BlobServiceClient from the connection string (API version pinned)."""
        return BlobServiceClient.from_connection_string(self.connection_string, **{**self.client_kwargs(), **kwargs})

    def put_blob(self, container: str, name: str, data: bytes) -> str:
        """Upload (overwriting), creating the container if needed; return the new ETag."""
        with self.blob_service() as service:
            with contextlib.suppress(ResourceExistsError):
                service.create_container(container)
            result = service.get_blob_client(container, name).upload_blob(data, overwrite=True)
        etag = result["etag"]
        assert isinstance(etag, str), result
        return etag


# --------------------------------------------------------------------------- the table service


class AzuriteTable:
    """Azurite's table service on 127.0.0.1 (HTTP + shared key; or HTTPS + basic OAuth + shared key). `stop()`
    keeps its data and port, so `start()` again brings back the same tables: a store that went away and came back.

        with AzuriteTable() as tables:
            env = {"USAGE_TABLE_CONNECTION_STRING": tables.connection_string}

        with AzuriteTable(oauth=True) as tables:  # what Azure uses: the endpoint and the app's identity
            TableClient(tables.endpoint, "t", credential=FakeStorageCredential(), connection_verify=tables.cert_path)
    """

    def __init__(self, *, startup_timeout: float = 30.0, debug: bool = False, oauth: bool = False) -> None:
        self.startup_timeout = startup_timeout
        self.debug = debug  # Azurite logs every request it serves: `requests_served` reads them
        self.oauth = oauth
        self.cert_path: Path | None = None
        self.port = 0
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        if self._process is not None:
            return self
        exe = ensure_installed().with_name("azurite-table")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="azurite-table-"))
            atexit.register(self.close)
        tls: list[str] = []
        if self.oauth:
            if self.cert_path is None:
                self.cert_path, _ = make_self_signed_cert(self.workdir)
            tls = ["--cert", str(self.cert_path), "--key", str(self.workdir / "azurite-key.pem"), "--oauth", "basic"]
        for _ in range(3):
            self.port = self.port or _free_port()
            cmd = [
                str(exe),
                "--silent",
                "--disableTelemetry",
                "--location",
                str(self.workdir / "data"),
                "--tableHost",
                HOST,
                "--tablePort",
                str(self.port),
                "--skipApiVersionCheck",
                "--loose",
                *(["--debug", str(self.workdir / "debug.log")] if self.debug else []),
                *tls,
            ]
            log = (self.workdir / "azurite-table.log").open("ab")
            self._process = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self._process.poll() is None:
                if _port_answers(self.port):
                    return self
                time.sleep(0.05)
            self.stop()
            self.port = 0  # the port may have been taken: try another
        raise AzuriteError(f"Azurite's table service did not start: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the service; its data stays for the next `start()`."""
        proc, self._process = self._process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        """Stop and remove the data."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.workdir / "azurite-table.log").read_text(errors="replace")[-chars:] if self.workdir else ""
        except OSError:
            return ""

    def requests_served(self) -> list[tuple[str, str]]:
        """Every request served so far, as (method, URL), from Azurite's debug log (`debug=True`)."""
        assert self.debug and self.workdir is not None
        path = self.workdir / "debug.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return re.findall(r"TableStorageContextMiddleware: RequestMethod=(\w+) RequestURL=(\S+)", text)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.oauth else 'http'}://{HOST}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={'https' if self.oauth else 'http'};"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};TableEndpoint={self.endpoint};"
        )
