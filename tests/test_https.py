"""`python -m trashure serve --https`: the dashboard over HTTPS for a phone's camera, with a self-signed
certificate made on first use."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from browser_kit import free_port
from conftest import REPO
from trashure.https import _covers, ensure_certificate


def test_the_certificate_is_made_once_and_names_the_hosts(tmp_path):
    cert, key = ensure_certificate(tmp_path, ["localhost", "127.0.0.1", "192.168.1.20"])
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    first = cert.read_bytes()
    assert ensure_certificate(tmp_path, ["localhost", "127.0.0.1"])[0].read_bytes() == first  # reused
    assert not _covers(cert, ["localhost", "10.0.0.9"])  # a new address: a new certificate
    assert ensure_certificate(tmp_path, ["localhost", "10.0.0.9"])[0].read_bytes() != first


def test_serve_https_answers_its_health_endpoint_over_tls(tmp_path):
    port = free_port()
    cert_dir = tmp_path / "cert"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRASHURE_RUNS": str(tmp_path / "runs"),
           "TRASHURE_DATA": str(tmp_path / "no-data")}
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "trashure", "serve", "--https", "--port", str(port),
                               "--address", "127.0.0.1", "--cert-dir", str(cert_dir)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.time() + 60, None
        while time.time() < deadline and body is None:
            if not (cert_dir / "trashure-cert.pem").is_file():
                time.sleep(0.2)
                continue
            # Verified against the server's own certificate, for the address the phone would use.
            context = ssl.create_default_context(cafile=str(cert_dir / "trashure-cert.pem"))
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/_stcore/health", timeout=2,
                                            context=context) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.3)
        output = (tmp_path / "serve.log").read_text()
        assert body == "ok", output[-2000:]
        assert f"https://localhost:{port}" in output and "allow the camera" in output
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        server.terminate()
        server.wait(timeout=20)
