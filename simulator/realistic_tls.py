"""Real key material for pulumi-tls resources under mocks, minted with `cryptography` from the resources' inputs.

Every certificate the program hands to a node is therefore a real certificate that real tools (openssl, etcd, the
kubernetes client) can load, and tests can inspect SANs, usages and chains instead of trusting placeholders.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM = serialization.Encoding.PEM
_NO_PASSWORD = serialization.NoEncryption()


def private_key_outputs(inputs: dict[str, Any]) -> dict[str, str]:
    algorithm = inputs.get("algorithm", "RSA")
    if algorithm == "ECDSA":
        curve = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(),
                 "P521": ec.SECP521R1()}[inputs.get("ecdsaCurve", "P224")]
        key = ec.generate_private_key(curve)
        pem = key.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, _NO_PASSWORD)
    elif algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
        pem = key.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, _NO_PASSWORD)
    elif algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_PASSWORD)
    else:
        raise ValueError(f"unsupported algorithm {algorithm}")
    public = key.public_key()
    return {
        "algorithm": algorithm,
        "privateKeyPem": pem.decode(),
        "privateKeyPemPkcs8": key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_PASSWORD).decode(),
        "privateKeyOpenssh": key.private_bytes(_PEM, serialization.PrivateFormat.OpenSSH, _NO_PASSWORD).decode(),
        "publicKeyPem": public.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "publicKeyOpenssh": public.public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode() + "\n",
    }


def _load_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _name(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attributes = []
    if subject.get("organization"):
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    if subject.get("commonName"):
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    return x509.Name(attributes)


def _sans(dns_names, ip_addresses) -> list[x509.GeneralName]:
    return [*(x509.DNSName(d) for d in dns_names or []),
            *(x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses or [])]


def _signature_hash(signing_key):
    return None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _build(*, subject: x509.Name, issuer: x509.Name, public_key, signing_key, sans, inputs: dict[str, Any],
           issuer_public_key) -> str:
    uses = set(inputs.get("allowedUses") or [])
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    is_ca = bool(inputs.get("isCaCertificate"))
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(hours=int(inputs["validityPeriodHours"])))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature="digital_signature" in uses, content_commitment=False,
                   key_encipherment="key_encipherment" in uses, data_encipherment=False, key_agreement=False,
                   key_cert_sign="cert_signing" in uses, crl_sign="crl_signing" in uses,
                   encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False))
    extended = [oid for use, oid in (("server_auth", ExtendedKeyUsageOID.SERVER_AUTH),
                                     ("client_auth", ExtendedKeyUsageOID.CLIENT_AUTH)) if use in uses]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(signing_key, _signature_hash(signing_key))
    return cert.public_bytes(_PEM).decode()


def self_signed_cert_outputs(inputs: dict[str, Any]) -> dict[str, str]:
    key = _load_key(inputs["privateKeyPem"])
    name = _name(inputs.get("subject"))
    pem = _build(subject=name, issuer=name, public_key=key.public_key(), signing_key=key,
                 sans=_sans(inputs.get("dnsNames"), inputs.get("ipAddresses")), inputs=inputs,
                 issuer_public_key=key.public_key())
    return _with_validity(pem)


def _with_validity(pem: str) -> dict[str, str]:
    """The certificate and its validity times, RFC 3339 in UTC as pulumi-tls gives them."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {"certPem": pem, "validityStartTime": cert.not_valid_before_utc.strftime(stamp),
            "validityEndTime": cert.not_valid_after_utc.strftime(stamp)}


def cert_request_outputs(inputs: dict[str, Any]) -> dict[str, str]:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    sans = _sans(inputs.get("dnsNames"), inputs.get("ipAddresses"))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, _signature_hash(key))
    return {"certRequestPem": csr.public_bytes(_PEM).decode()}


def locally_signed_cert_outputs(inputs: dict[str, Any]) -> dict[str, str]:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    pem = _build(subject=csr.subject, issuer=ca_cert.subject, public_key=csr.public_key(), signing_key=ca_key,
                 sans=sans, inputs=inputs, issuer_public_key=ca_cert.public_key())
    return _with_validity(pem)


TLS_OUTPUTS = {
    "tls:index/privateKey:PrivateKey": private_key_outputs,
    "tls:index/selfSignedCert:SelfSignedCert": self_signed_cert_outputs,
    "tls:index/certRequest:CertRequest": cert_request_outputs,
    "tls:index/locallySignedCert:LocallySignedCert": locally_signed_cert_outputs,
}
