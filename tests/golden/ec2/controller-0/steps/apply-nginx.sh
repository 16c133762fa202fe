#!/bin/bash
# Apply nginx smoke test. Verification: kubectl reports each object applied.
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
        "name": "smoke-test",
        "labels": {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/warn": "restricted",
          "pod-security.kubernetes.io/audit": "restricted"
        }
      }
    },
    {
      "apiVersion": "v1",
      "kind": "ConfigMap",
      "metadata": {
        "name": "nginx",
        "namespace": "smoke-test"
      },
      "data": {
        "nginx.conf": "worker_processes 1;\ndaemon off;\npid /tmp/nginx.pid;\nerror_log stderr warn;\n\nevents {\n    worker_connections 256;\n}\n\nhttp {\n    include /etc/nginx/mime.types;\n    # Off: the readiness probe would fill it, and opening /dev/stdout needs the container user to own it.\n    access_log off;\n    client_body_temp_path /tmp/client_body;\n    proxy_temp_path /tmp/proxy;\n    fastcgi_temp_path /tmp/fastcgi;\n    uwsgi_temp_path /tmp/uwsgi;\n    scgi_temp_path /tmp/scgi;\n\n    server {\n        listen 8080;\n        root /usr/share/nginx/html;\n        index index.html;\n    }\n}\n"
      }
    },
    {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
        "name": "nginx",
        "namespace": "smoke-test"
      },
      "spec": {
        "replicas": 3,
        "selector": {
          "matchLabels": {
            "app": "nginx-smoke-test"
          }
        },
        "template": {
          "metadata": {
            "labels": {
              "app": "nginx-smoke-test"
            }
          },
          "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {
              "runAsNonRoot": true,
              "runAsUser": 101,
              "runAsGroup": 101,
              "seccompProfile": {
                "type": "RuntimeDefault"
              }
            },
            "topologySpreadConstraints": [
              {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {
                  "matchLabels": {
                    "app": "nginx-smoke-test"
                  }
                }
              }
            ],
            "containers": [
              {
                "name": "nginx",
                "image": "docker.io/library/nginx:1.29",
                "command": [
                  "nginx",
                  "-c",
                  "/etc/nginx-smoke-test/nginx.conf"
                ],
                "ports": [
                  {
                    "containerPort": 8080
                  }
                ],
                "readinessProbe": {
                  "httpGet": {
                    "path": "/",
                    "port": 8080
                  }
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
                "resources": {
                  "requests": {
                    "cpu": "10m",
                    "memory": "16Mi"
                  },
                  "limits": {
                    "memory": "64Mi"
                  }
                },
                "volumeMounts": [
                  {
                    "name": "config",
                    "mountPath": "/etc/nginx-smoke-test",
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
                "name": "config",
                "configMap": {
                  "name": "nginx"
                }
              },
              {
                "name": "tmp",
                "emptyDir": {
                  "sizeLimit": "64Mi"
                }
              }
            ]
          }
        }
      }
    },
    {
      "apiVersion": "v1",
      "kind": "Service",
      "metadata": {
        "name": "nginx",
        "namespace": "smoke-test"
      },
      "spec": {
        "type": "NodePort",
        "selector": {
          "app": "nginx-smoke-test"
        },
        "ports": [
          {
            "port": 80,
            "targetPort": 8080,
            "nodePort": 30080
          }
        ]
      }
    }
  ]
}
K8S_FROM_SCRATCH_EOF
