"""Pki: the certificate table of infra/certs.py turned into pulumi-tls resources.

Each CA is a private key plus a self-signed CA certificate; each row is key -> request -> locally signed
certificate. Every private key leaves this component only as a Pulumi secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_tls as tls

from infra.certs import CA_USES, CaSpec, CertSpec

KEY_SECRET_OUTPUTS = ["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"]


@dataclass(frozen=True)
class KeyPair:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]          # secret
    not_after: pulumi.Output[str]        # RFC 3339: when the certificate expires


@dataclass
class PkiArgs:
    cas: Sequence[CaSpec]
    certs: Sequence[CertSpec]


def _private_key(name: str, parent: pulumi.Resource, algorithm: str = "ECDSA") -> tls.PrivateKey:
    kwargs = {"ecdsa_curve": "P256"} if algorithm == "ECDSA" else {"rsa_bits": 2048}
    return tls.PrivateKey(name, algorithm=algorithm, **kwargs, opts=pulumi.ResourceOptions(
        parent=parent, additional_secret_outputs=KEY_SECRET_OUTPUTS))


class Pki(pulumi.ComponentResource):
    cas: dict[str, KeyPair]                                 # by CA name
    certs: dict[str, KeyPair]                               # by certificate name (infra/certs.py)
    service_account_private_key_pem: pulumi.Output[str]     # secret
    service_account_public_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: PkiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:Pki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.cas = {}
        for ca in args.cas:
            key = _private_key(f"{name}-{ca.name}-key", self)
            cert = tls.SelfSignedCert(
                f"{name}-{ca.name}",
                private_key_pem=key.private_key_pem,
                is_ca_certificate=True,
                subject=tls.SelfSignedCertSubjectArgs(common_name=ca.common_name, organization="k8s-from-scratch"),
                validity_period_hours=ca.validity_hours,
                allowed_uses=list(CA_USES),
                opts=child,
            )
            self.cas[ca.name] = KeyPair(cert.cert_pem, pulumi.Output.secret(key.private_key_pem),
                                        cert.validity_end_time)

        self.certs = {}
        for spec in args.certs:
            signer = self.cas[spec.ca]
            key = _private_key(f"{name}-{spec.name}-key", self)
            request = tls.CertRequest(
                f"{name}-{spec.name}-csr",
                private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=spec.common_name, organization=spec.organization),
                dns_names=list(spec.dns_names),
                ip_addresses=list(spec.ip_addresses),
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{spec.name}",
                cert_request_pem=request.cert_request_pem,
                ca_cert_pem=signer.cert_pem,
                ca_private_key_pem=signer.key_pem,
                validity_period_hours=spec.validity_hours,
                early_renewal_hours=spec.early_renewal_hours,
                allowed_uses=list(spec.usages),
                opts=child,
            )
            self.certs[spec.name] = KeyPair(cert.cert_pem, pulumi.Output.secret(key.private_key_pem),
                                            cert.validity_end_time)

        # Service-account tokens are signed with their own RSA key pair, not with any TLS identity.
        sa_key = _private_key(f"{name}-service-account-key", self, algorithm="RSA")
        self.service_account_private_key_pem = pulumi.Output.secret(sa_key.private_key_pem)
        self.service_account_public_key_pem = sa_key.public_key_pem

        self.register_outputs({"caCertPem": self.cas[args.cas[0].name].cert_pem})
