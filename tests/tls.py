"""A throwaway certificate authority made with `openssl` for a test: its CA certificate, and a server certificate
it signed for the loopback address, so TLS is tested against real certificates and a real handshake."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from backends.loopback import LOOPBACK

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files: the CA a client trusts, and the server's certificate and private key."""

    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def throwaway_ca(directory: Path, name: str = "mn-test") -> Certificates:
    """A new CA in `directory` and a server certificate it signed for 127.0.0.1 and localhost, valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    cert, key, request = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName=IP:{LOOPBACK},DNS:localhost\n")
    _openssl("req", "-x509", *_EC, "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", f"/CN={name} CA")
    _openssl("req", *_EC, "-keyout", str(key), "-out", str(request), "-subj", "/CN=localhost")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "1", "-extfile", str(extensions),
    )  # fmt: skip
    return Certificates(ca, cert, key)
