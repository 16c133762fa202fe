#!/bin/bash
# Apply metrics-server. Verification: kubectl reports each object applied.
set -euo pipefail
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "v1",
      "kind": "Namespace",
      "metadata": {
        "name": "metrics-server",
        "labels": {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/warn": "restricted",
          "pod-security.kubernetes.io/audit": "restricted"
        }
      }
    },
    {
      "apiVersion": "v1",
      "kind": "ServiceAccount",
      "metadata": {
        "name": "metrics-server",
        "namespace": "metrics-server"
      }
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRole",
      "metadata": {
        "name": "system:aggregated-metrics-reader",
        "labels": {
          "rbac.authorization.k8s.io/aggregate-to-view": "true",
          "rbac.authorization.k8s.io/aggregate-to-edit": "true",
          "rbac.authorization.k8s.io/aggregate-to-admin": "true"
        }
      },
      "rules": [
        {
          "apiGroups": [
            "metrics.k8s.io"
          ],
          "resources": [
            "pods",
            "nodes"
          ],
          "verbs": [
            "get",
            "list",
            "watch"
          ]
        }
      ]
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRole",
      "metadata": {
        "name": "system:metrics-server"
      },
      "rules": [
        {
          "apiGroups": [
            ""
          ],
          "resources": [
            "nodes/metrics"
          ],
          "verbs": [
            "get"
          ]
        },
        {
          "apiGroups": [
            ""
          ],
          "resources": [
            "pods",
            "nodes"
          ],
          "verbs": [
            "get",
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
        "name": "system:metrics-server"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:metrics-server"
      },
      "subjects": [
        {
          "kind": "ServiceAccount",
          "name": "metrics-server",
          "namespace": "metrics-server"
        }
      ]
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "RoleBinding",
      "metadata": {
        "name": "metrics-server-auth-reader",
        "namespace": "kube-system"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader"
      },
      "subjects": [
        {
          "kind": "ServiceAccount",
          "name": "metrics-server",
          "namespace": "metrics-server"
        }
      ]
    },
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRoleBinding",
      "metadata": {
        "name": "metrics-server:system:auth-delegator"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:auth-delegator"
      },
      "subjects": [
        {
          "kind": "ServiceAccount",
          "name": "metrics-server",
          "namespace": "metrics-server"
        }
      ]
    },
    {
      "apiVersion": "v1",
      "kind": "Secret",
      "metadata": {
        "name": "metrics-server-tls",
        "namespace": "metrics-server"
      },
      "type": "kubernetes.io/tls",
      "stringData": {
        "tls.crt": "-----BEGIN CERTIFICATE-----\n(masked)\n-----END CERTIFICATE-----\n",
        "tls.key": "-----BEGIN EC PRIVATE KEY-----\n(masked)\n-----END EC PRIVATE KEY-----\n"
      }
    },
    {
      "apiVersion": "v1",
      "kind": "Service",
      "metadata": {
        "name": "metrics-server",
        "labels": {
          "k8s-app": "metrics-server"
        },
        "namespace": "metrics-server"
      },
      "spec": {
        "selector": {
          "k8s-app": "metrics-server"
        },
        "ports": [
          {
            "name": "https",
            "port": 443,
            "protocol": "TCP",
            "targetPort": "https",
            "appProtocol": "https"
          }
        ]
      }
    },
    {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
        "name": "metrics-server",
        "labels": {
          "k8s-app": "metrics-server"
        },
        "namespace": "metrics-server"
      },
      "spec": {
        "replicas": 2,
        "selector": {
          "matchLabels": {
            "k8s-app": "metrics-server"
          }
        },
        "strategy": {
          "type": "RollingUpdate",
          "rollingUpdate": {
            "maxUnavailable": 0
          }
        },
        "template": {
          "metadata": {
            "labels": {
              "k8s-app": "metrics-server"
            }
          },
          "spec": {
            "serviceAccountName": "metrics-server",
            "priorityClassName": "system-cluster-critical",
            "securityContext": {
              "runAsNonRoot": true,
              "runAsUser": 65534,
              "runAsGroup": 65534,
              "seccompProfile": {
                "type": "RuntimeDefault"
              },
              "fsGroup": 65534
            },
            "affinity": {
              "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                  {
                    "labelSelector": {
                      "matchLabels": {
                        "k8s-app": "metrics-server"
                      }
                    },
                    "topologyKey": "kubernetes.io/hostname"
                  }
                ]
              }
            },
            "containers": [
              {
                "name": "metrics-server",
                "image": "registry.k8s.io/metrics-server/metrics-server:v0.9.0",
                "args": [
                  "--secure-port=10250",
                  "--tls-cert-file=/etc/metrics-server/tls/tls.crt",
                  "--tls-private-key-file=/etc/metrics-server/tls/tls.key",
                  "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                  "--kubelet-preferred-address-types=InternalIP",
                  "--kubelet-use-node-status-port",
                  "--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                  "--metric-resolution=15s"
                ],
                "ports": [
                  {
                    "name": "https",
                    "containerPort": 10250,
                    "protocol": "TCP"
                  }
                ],
                "resources": {
                  "requests": {
                    "cpu": "100m",
                    "memory": "200Mi"
                  },
                  "limits": {
                    "memory": "400Mi"
                  }
                },
                "readinessProbe": {
                  "httpGet": {
                    "path": "/readyz",
                    "port": "https",
                    "scheme": "HTTPS"
                  },
                  "periodSeconds": 10,
                  "failureThreshold": 3,
                  "initialDelaySeconds": 20
                },
                "livenessProbe": {
                  "httpGet": {
                    "path": "/livez",
                    "port": "https",
                    "scheme": "HTTPS"
                  },
                  "periodSeconds": 10,
                  "failureThreshold": 3
                },
                "securityContext": {
                  "allowPrivilegeEscalation": false,
                  "readOnlyRootFilesystem": true,
                  "capabilities": {
                    "drop": [
                      "ALL"
                    ]
                  }
                },
                "volumeMounts": [
                  {
                    "name": "tls",
                    "mountPath": "/etc/metrics-server/tls",
                    "readOnly": true
                  },
                  {
                    "name": "tmp",
                    "mountPath": "/tmp"
                  }
                ]
              }
            ],
            "volumes": [
              {
                "name": "tls",
                "secret": {
                  "secretName": "metrics-server-tls",
                  "defaultMode": 288
                }
              },
              {
                "name": "tmp",
                "emptyDir": {
                  "sizeLimit": "16Mi"
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
        "name": "metrics-server",
        "namespace": "metrics-server"
      },
      "spec": {
        "minAvailable": 1,
        "selector": {
          "matchLabels": {
            "k8s-app": "metrics-server"
          }
        }
      }
    },
    {
      "apiVersion": "apiregistration.k8s.io/v1",
      "kind": "APIService",
      "metadata": {
        "name": "v1beta1.metrics.k8s.io",
        "labels": {
          "k8s-app": "metrics-server"
        }
      },
      "spec": {
        "group": "metrics.k8s.io",
        "version": "v1beta1",
        "groupPriorityMinimum": 100,
        "versionPriority": 100,
        "service": {
          "name": "metrics-server",
          "namespace": "metrics-server",
          "port": 443
        },
        "caBundle": "(masked)"
      }
    }
  ]
}
K8S_FROM_SCRATCH_EOF
