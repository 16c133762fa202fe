#!/bin/bash
# Apply the cluster RBAC as super-admin. Verification: kubectl reports each object applied.
set -euo pipefail
echo "applying the cluster-admins binding"
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.kubeconfig apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRoleBinding",
      "metadata": {
        "name": "k8s-from-scratch:cluster-admins"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin"
      },
      "subjects": [
        {
          "apiGroup": "rbac.authorization.k8s.io",
          "kind": "Group",
          "name": "k8s-from-scratch:cluster-admins"
        }
      ]
    }
  ]
}
K8S_FROM_SCRATCH_EOF
echo "applying the deployers binding"
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.kubeconfig apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRoleBinding",
      "metadata": {
        "name": "k8s-from-scratch:deployers"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin"
      },
      "subjects": [
        {
          "apiGroup": "rbac.authorization.k8s.io",
          "kind": "Group",
          "name": "k8s-from-scratch:deployers"
        }
      ]
    }
  ]
}
K8S_FROM_SCRATCH_EOF
echo "applying the API server's kubelet access"
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.kubeconfig apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {
      "apiVersion": "rbac.authorization.k8s.io/v1",
      "kind": "ClusterRoleBinding",
      "metadata": {
        "name": "k8s-from-scratch:kube-apiserver-to-kubelet"
      },
      "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:kubelet-api-admin"
      },
      "subjects": [
        {
          "apiGroup": "rbac.authorization.k8s.io",
          "kind": "User",
          "name": "kube-apiserver-kubelet-client"
        }
      ]
    }
  ]
}
K8S_FROM_SCRATCH_EOF
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/super-admin.kubeconfig delete --ignore-not-found clusterrolebinding/system:kube-apiserver-to-kubelet clusterrole/system:kube-apiserver-to-kubelet
