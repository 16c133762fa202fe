#!/bin/bash
# Apply CoreDNS. Verification: kubectl reports each object applied.
set -euo pipefail
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "v1",
      "kind": "ServiceAccount",
      "metadata": {
        "name": "coredns",
        "namespace": "kube-system"
      }
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRole",
      "metadata": {
        "name": "system:coredns"
      },
      "rules": [
        {
          "apiGroups": [
            ""
          ],
          "resources": [
            "endpoints",
            "services",
            "pods",
            "namespaces"
          ],
          "verbs": [
            "list",
            "watch"
          ]
        },
        {
          "apiGroups": [
            "discovery.k8s.io"
          ],
          "resources": [
            "endpointslices"
          ],
          "verbs": [
            "list",
            "watch"
          ]
        }
      ]
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRoleBinding",
      "metadata": {
        "name": "system:coredns"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:coredns"
      },
      "subjects": [
        {
          "kind": "ServiceAccount",
          "name": "coredns",
          "namespace": "kube-system"
        }
      ]
    },
    {
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "metadata": {
        "name": "coredns",
        "namespace": "kube-system"
      },
      "data": {
        "Corefile": ".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n        max_concurrent 1000\n    }\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n"
      }
    },
    {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
        "name": "coredns",
        "labels": {
          "k8s-app": "kube-dns"
        },
        "namespace": "kube-system"
      },
      "spec": {
        "replicas": 2,
        "selector": {
          "matchLabels": {
            "k8s-app": "kube-dns"
          }
        },
        "strategy": {
          "type": "RollingUpdate",
          "rollingUpdate": {
            "maxUnavailable": 1
          }
        },
        "template": {
          "metadata": {
            "labels": {
              "k8s-app": "kube-dns"
            }
          },
          "spec": {
            "serviceAccountName": "coredns",
            "priorityClassName": "system-cluster-critical",
            "dnsPolicy": "Default",
            "securityContext": {
              "runAsNonRoot": true,
              "runAsUser": 65532,
              "runAsGroup": 65532,
              "seccompProfile": {
                "type": "RuntimeDefault"
              }
            },
            "affinity": {
              "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                  {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {
                      "matchLabels": {
                        "k8s-app": "kube-dns"
                      }
                    }
                  }
                ]
              }
            },
            "containers": [
              {
                "name": "coredns",
                "image": "registry.k8s.io/coredns/coredns:v1.14.6",
                "args": [
                  "-conf",
                  "/etc/coredns/Corefile"
                ],
                "resources": {
                  "requests": {
                    "cpu": "100m",
                    "memory": "70Mi"
                  },
                  "limits": {
                    "memory": "170Mi"
                  }
                },
                "ports": [
                  {
                    "name": "dns",
                    "containerPort": 53,
                    "protocol": "UDP"
                  },
                  {
                    "name": "dns-tcp",
                    "containerPort": 53,
                    "protocol": "TCP"
                  },
                  {
                    "name": "metrics",
                    "containerPort": 9153,
                    "protocol": "TCP"
                  }
                ],
                "securityContext": {
                  "allowPrivilegeEscalation": false,
                  "readOnlyRootFilesystem": true,
                  "capabilities": {
                    "drop": [
                      "ALL"
                    ],
                    "add": [
                      "NET_BIND_SERVICE"
                    ]
                  }
                },
                "livenessProbe": {
                  "httpGet": {
                    "path": "/health",
                    "port": 8080
                  },
                  "initialDelaySeconds": 60
                },
                "readinessProbe": {
                  "httpGet": {
                    "path": "/ready",
                    "port": 8181
                  }
                },
                "volumeMounts": [
                  {
                    "name": "config",
                    "mountPath": "/etc/coredns",
                    "readOnly": true
                  }
                ]
              }
            ],
            "volumes": [
              {
                "name": "config",
                "configMap": {
                  "name": "coredns"
                }
              }
            ]
          }
        }
      }
    },
    {
      "apiVersion": "policy/v1",
      "kind": "PodDisruptionBudget",
      "metadata": {
        "name": "coredns",
        "namespace": "kube-system"
      },
      "spec": {
        "maxUnavailable": 1,
        "selector": {
          "matchLabels": {
            "k8s-app": "kube-dns"
          }
        }
      }
    },
    {
      "apiVersion": "v1",
      "kind": "Service",
      "metadata": {
        "name": "kube-dns",
        "labels": {
          "k8s-app": "kube-dns"
        },
        "namespace": "kube-system"
      },
      "spec": {
        "selector": {
          "k8s-app": "kube-dns"
        },
        "clusterIP": "10.32.0.10",
        "ports": [
          {
            "name": "dns",
            "port": 53,
            "protocol": "UDP"
          },
          {
            "name": "dns-tcp",
            "port": 53,
            "protocol": "TCP"
          },
          {
            "name": "metrics",
            "port": 9153,
            "protocol": "TCP"
          }
        ]
      }
    }
  ]
}
K8S_FROM_SCRATCH_EOF
