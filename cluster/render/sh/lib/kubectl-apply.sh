@KUBECTL@ apply --server-side --force-conflicts \
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
@MANIFEST@
K8S_FROM_SCRATCH_EOF
