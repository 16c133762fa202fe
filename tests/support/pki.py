"""Mint the cluster's certificates from the program's own PKI table (infra/certs.py) with `cryptography`,
through the same functions that give pulumi-tls resources real outputs under mocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from infra.certs import CA_SPECS, CA_USES, CertSpec, Host, cluster_cert_specs
from simulator.realistic_tls import (cert_request_outputs, locally_signed_cert_outputs, private_key_outputs,
                                         self_signed_cert_outputs)


@dataclass(frozen=True)
class Minted:
    cert_pem: str
    key_pem: str


def _key() -> str:
    return private_key_outputs({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]


def mint(specs: Sequence[CertSpec], cas: dict[str, Minted] | None = None) -> dict[str, Minted]:
    """Every CA of CA_SPECS and every certificate of `specs`, keyed by name. `cas`: keep these CAs (a renewal of
    the certificates they signed)."""
    minted: dict[str, Minted] = dict(cas or {})
    for ca in CA_SPECS:
        if ca.name in minted:
            continue
        key = _key()
        cert = self_signed_cert_outputs({"privateKeyPem": key, "subject": {"commonName": ca.common_name},
                                         "validityPeriodHours": ca.validity_hours, "isCaCertificate": True,
                                         "allowedUses": list(CA_USES)})["certPem"]
        minted[ca.name] = Minted(cert, key)
    for spec in specs:
        key = _key()
        csr = cert_request_outputs({"privateKeyPem": key, "subject": {"commonName": spec.common_name,
                                                                     "organization": spec.organization},
                                    "dnsNames": list(spec.dns_names), "ipAddresses": list(spec.ip_addresses)})
        signer = minted[spec.ca]
        cert = locally_signed_cert_outputs({"certRequestPem": csr["certRequestPem"], "caCertPem": signer.cert_pem,
                                            "caPrivateKeyPem": signer.key_pem, "validityPeriodHours": spec.validity_hours,
                                            "allowedUses": list(spec.usages)})["certPem"]
        minted[spec.name] = Minted(cert, key)
    return minted


def mint_cluster(etcd: Sequence[Host], controllers: Sequence[Host], workers: Sequence[Host],
                 service_ip: str = "10.32.0.1", api_dns_names: Sequence[str] = (),
                 cas: dict[str, Minted] | None = None, metrics_server_namespace: str | None = None
                 ) -> dict[str, Minted]:
    return mint(cluster_cert_specs(etcd=etcd, controllers=controllers, workers=workers, service_ip=service_ip,
                                   api_dns_names=api_dns_names, metrics_server_namespace=metrics_server_namespace),
                cas)
