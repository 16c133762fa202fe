"""The local lab: the program's node side on real machines (systemd-nspawn), with Kubernetes and etcd built from
their Go modules. `./lab` and tests/integration/test_lab.py both use it; see README, "Local lab"."""
