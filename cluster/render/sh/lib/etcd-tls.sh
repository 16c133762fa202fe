tls=(--cacert @PKI_DIR@/ca.crt --cert @PKI_DIR@/server.crt --key @PKI_DIR@/server.key)
