"""Reaching the API: in-cluster (a pod's service account) and kubeconfig authentication, over
TLS verified with the cluster's CA, against the emulator served on HTTPS at 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from racetrack_core.infrastructure import DeployError, TargetContext
from racetrack_plugins.k8s_infra import KubernetesDriver

from .conftest import NAMESPACE, job_spec, write_kubeconfig
from .emulator import RunningEmulator


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A CA-less certificate for 127.0.0.1 and its key, as a test cluster's API would have."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulated-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "apiserver.crt", directory / "apiserver.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_emulator(tmp_path: Path) -> Iterator[tuple[RunningEmulator, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with RunningEmulator(tls=context) as running:
        assert running.url.startswith("https://127.0.0.1:")
        yield running, cert


def test_in_cluster_auth_uses_the_service_account(
    tls_emulator: tuple[RunningEmulator, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, cert = tls_emulator
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token-7")
    (account / "namespace").write_text("racetrack")
    (account / "ca.crt").write_bytes(cert.read_bytes())
    port = emulator.url.rsplit(":", 1)[1]
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    for auth in ("in-cluster", "auto"):
        settings = {"auth": auth, "service_account_dir": str(account), "namespace": NAMESPACE}
        driver = KubernetesDriver(TargetContext(tmp_path / "home", settings))
        driver.start(job_spec(tmp_path))
        driver.delete("primer", "1.0.0")
        driver.close()
    requests = emulator.requests()
    assert requests
    assert {request.headers["Authorization"] for request in requests} == {"Bearer pod-token-7"}
    # Objects go to the configured namespace, not the pod's own.
    assert all(f"/namespaces/{NAMESPACE}/" in request.url.path for request in requests)


def test_kubeconfig_auth_verifies_the_cluster_ca(
    tls_emulator: tuple[RunningEmulator, Path], tmp_path: Path
) -> None:
    emulator, cert = tls_emulator
    trusted = write_kubeconfig(
        tmp_path / "trusted", emulator.url, **{"certificate-authority": str(cert)}
    )
    driver = KubernetesDriver(
        TargetContext(tmp_path / "home", {"auth": "kubeconfig", "kubeconfig": str(trusted)})
    )
    assert driver.replicas() == []
    driver.close()

    (tmp_path / "elsewhere").mkdir()
    other, _ = self_signed(tmp_path / "elsewhere")
    untrusted = write_kubeconfig(
        tmp_path / "untrusted", emulator.url, **{"certificate-authority": str(other)}
    )
    driver = KubernetesDriver(
        TargetContext(tmp_path / "home", {"auth": "kubeconfig", "kubeconfig": str(untrusted)})
    )
    with pytest.raises(DeployError, match="the Kubernetes API did not answer listing"):
        driver.replicas()
    driver.close()


def test_missing_credentials_say_where_they_were_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"cannot read a kubeconfig file \(set targets"):
        KubernetesDriver(
            TargetContext(tmp_path, {"auth": "kubeconfig", "kubeconfig": str(tmp_path / "missing")})
        )
    with pytest.raises(DeployError, match=r"cannot read the service account in .*in-cluster"):
        KubernetesDriver(
            TargetContext(tmp_path, {"auth": "in-cluster", "service_account_dir": str(tmp_path)})
        )
    config = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1")
    with pytest.raises(DeployError, match=r"targets.kubernetes.context"):
        KubernetesDriver(
            TargetContext(
                tmp_path,
                {"auth": "kubeconfig", "kubeconfig": str(config), "context": "production"},
            )
        )
