"""The API server's policy files: who may call it anonymously, what it records, what it admits, how it stores Secrets.

They are YAML, written out as the files a node receives, because the standard audit tools read them as text (CIS
1.2.28 greps `providers:` and takes the next line). Each one is checked against the Kubernetes 1.37 types in
tests/render/test_cis_control_plane.py. Every file here is 0600 root on the controller.
"""

from __future__ import annotations

from cluster.render.common import KUBE_DIR

ENCRYPTION_CONFIG = f"{KUBE_DIR}/encryption-config.yaml"
AUDIT_POLICY = f"{KUBE_DIR}/audit-policy.yaml"
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"
ADMISSION_CONFIG = f"{KUBE_DIR}/admission-config.yaml"
AUTHENTICATION_CONFIG = f"{KUBE_DIR}/authentication-config.yaml"

# Health endpoints stay open to anonymous callers (the node-local API proxies and the load balancer check /readyz
# without a client certificate); every other anonymous request is refused before authorization (KEP-4633).
ANONYMOUS_PATHS = ("/readyz", "/livez", "/healthz")


def encryption_config(key_b64: str) -> str:
    """Secrets are encrypted at rest with secretbox (XSalsa20-Poly1305), the provider the Kubernetes docs rate
    strongest among the local ones; `identity` last lets the API server read anything written before."""
    return f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: "{key_b64}"
      - identity: {{}}
"""


def authentication_config() -> str:
    """Anonymous requests only to the health endpoints. The `anonymous` section replaces --anonymous-auth: the API
    server refuses to start when both are given."""
    conditions = "".join(f"    - path: {path}\n" for path in ANONYMOUS_PATHS)
    return f"""apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
{conditions}"""


# First matching rule wins. Nothing is logged at RequestResponse: responses of lists and watches are large, and a
# response can hold a Secret or a token. Secrets, ConfigMaps and token reviews are logged at Metadata only (who, what,
# when), so the audit log never holds their contents.
AUDIT_POLICY_YAML = """apiVersion: audit.k8s.io/v1
kind: Policy
# One entry per request, written when the response is known.
omitStages:
  - RequestReceived
rules:
  # Health and version probes: anonymous, every few seconds, nothing to learn.
  - level: None
    nonResourceURLs:
      - /healthz*
      - /livez*
      - /readyz*
      - /version
  # Events are a record of their own, and the busiest writes in the cluster.
  - level: None
    resources:
      - group: ""
        resources: ["events"]
      - group: events.k8s.io
        resources: ["events"]
  # Heartbeats and leader election: each kubelet renews its lease every 10 s, each controller every 2 s.
  - level: None
    verbs: ["get", "update", "watch", "list"]
    resources:
      - group: coordination.k8s.io
        resources: ["leases"]
  # Never the contents of a Secret, a ConfigMap, a token request or a token review. Placed before the
  # read exemptions below, so that anyone's reads of them, kubelets' included, are recorded.
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps", "serviceaccounts/token"]
      - group: authentication.k8s.io
        resources: ["tokenreviews"]
  # Components reading what they serve; their writes are still recorded below.
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch", "list"]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get", "watch", "list"]
  # Node status updates: frequent and large; who and when is enough.
  - level: Metadata
    userGroups: ["system:nodes"]
    resources:
      - group: ""
        resources: ["nodes/status", "pods/status"]
  # Reads: who read what.
  - level: Metadata
    verbs: ["get", "list", "watch"]
  # Writes: who changed what, with the object they sent.
  - level: Request
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  # Anything else (exec, attach, port-forward, proxy): metadata.
  - level: Metadata
"""


def audit_policy() -> str:
    return AUDIT_POLICY_YAML


# EventRateLimit: events are best effort (a refused event is dropped, the action it reports is not), so a namespace
# or a user flooding the API with events is held back without harming anything else. Figures from the Kubernetes
# admission-controller documentation's example.
# PodSecurity: the cluster default when a namespace carries no label of its own. `baseline` refuses the known
# privilege escalations (host namespaces, privileged containers, hostPath); `restricted` is reported to the client
# and to the audit log so workloads can move to it. kube-system runs the node-level add-ons and is exempt.
ADMISSION_CONFIG_YAML = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: EventRateLimit
    configuration:
      apiVersion: eventratelimit.admission.k8s.io/v1alpha1
      kind: Configuration
      limits:
        - type: Namespace
          qps: 50
          burst: 100
          cacheSize: 2000
        - type: User
          qps: 10
          burst: 50
  - name: PodSecurity
    configuration:
      apiVersion: pod-security.admission.config.k8s.io/v1
      kind: PodSecurityConfiguration
      defaults:
        enforce: baseline
        enforce-version: latest
        audit: restricted
        audit-version: latest
        warn: restricted
        warn-version: latest
      exemptions:
        usernames: []
        runtimeClasses: []
        namespaces: ["kube-system"]
"""


def admission_config() -> str:
    return ADMISSION_CONFIG_YAML


# Admission plugins enabled on top of the default set (which already holds NamespaceLifecycle, ServiceAccount and
# PodSecurity; PodSecurity is named so that its configuration above visibly has a plugin to configure).
ADMISSION_PLUGINS = ("NodeRestriction", "DenyServiceExternalIPs", "EventRateLimit", "PodSecurity")

# TLS 1.2 suites with forward secrecy and AEAD only (the CIS list); the TLS 1.3 suites are named for audit tools,
# Go always offers them.
TLS_CIPHER_SUITES = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)

# Audit log rotation: 100 MB files, 10 of them kept, none older than 30 days (the CIS figures): at most about 1.1 GB
# on a controller's 20 GB root volume.
AUDIT_LOG_MAXAGE_DAYS = 30
AUDIT_LOG_MAXBACKUP = 10
AUDIT_LOG_MAXSIZE_MB = 100
