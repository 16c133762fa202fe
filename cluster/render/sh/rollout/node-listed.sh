#!/bin/bash
# Verification: @NODE@ is a registered node (drained and deleted before its machine goes).
@PRELUDE@
kubectl get node "$node" -o name || fail "$node is not a registered node"
