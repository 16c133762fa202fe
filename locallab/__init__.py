"""The local lab: the program's node side on real machines (systemd-nspawn), on the pinned releases (downloaded,
or built from their Go modules). `./lab` and tests/integration/test_lab*.py both use it; see docs/lab.md."""
