"""Serving the dashboard over HTTPS to phones on the local network.

Browsers give a page the camera only on https:// or on localhost, so a phone that opens
http://<laptop>:8501 gets no camera. A self-signed certificate for the laptop's names and addresses,
made on first use and kept outside the repository, is enough: the phone accepts it once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path
from typing import Sequence

from trashure.config import default_cache_dir
from trashure.errors import TrashureError

VALID_DAYS = 825  # the longest validity Apple's devices accept for a server certificate


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses a phone on the same network can reach (no packet is sent)."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # picks the interface of the default route
            found.add(probe.getsockname()[0])
        except OSError:
            pass
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)


def certificate_names() -> list[str]:
    return ["localhost", socket.gethostname(), "127.0.0.1", *lan_addresses()]


def _covers(cert_path: Path, names: Sequence[str]) -> bool:
    """True when the certificate is readable, valid for another week and names every host."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    have |= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)
    return fresh and set(names) <= have


def ensure_certificate(folder: Path | None = None, names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """(certificate, key) PEM files for these host names and addresses, made when missing, expiring or
    not naming every host. They live in the cache folder, never in the repository."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from trashure.files import atomic_write_bytes

    folder = Path(folder) if folder else default_cache_dir() / "https"
    names = list(dict.fromkeys(names or certificate_names()))
    cert_path, key_path = folder / "trashure-cert.pem", folder / "trashure-key.pem"
    if key_path.is_file() and _covers(cert_path, names):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trashure studio (self-signed)")])
    alt = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    try:
        atomic_write_bytes(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()), mode=0o600)
        atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TrashureError(f"cannot write the HTTPS certificate to {folder}: {exc.strerror}") from None
    return cert_path, key_path


def streamlit_command(python: str, port: int, address: str, cert: Path | None = None,
                      key: Path | None = None) -> list[str]:
    """The `streamlit run app.py` command line, over HTTPS when a certificate is given."""
    cmd = [python, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", address]
    if cert and key:
        cmd += ["--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key)]
    return cmd


def phone_steps(port: int, addresses: Sequence[str]) -> str:
    """What a presenter does on the phone."""
    urls = "\n".join(f"     https://{a}:{port}" for a in addresses) or f"     https://<this laptop's address>:{port}"
    return (f"On the phone (on the same Wi-Fi as this laptop):\n"
            f"  1. Open one of:\n{urls}\n"
            "  2. The browser warns that the certificate is not trusted (it is this laptop's own, self-signed):\n"
            "     Chrome: Advanced -> Proceed; Safari: Show Details -> visit this website.\n"
            "  3. Open Classify and allow the camera when asked (the Upload tab also offers the phone's camera).\n"
            f"On this laptop: https://localhost:{port}")
