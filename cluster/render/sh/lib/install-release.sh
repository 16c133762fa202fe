#!/bin/bash
# Install @COMPONENT@ @VERSION@ from @URL@ beside any other release. Verification: its files are in @RELEASE@.
set -euo pipefail
url=@URL@
file=@FILE@
want=@WANT@
release=@RELEASE@
install -d -m 0755 @CACHE_DIR@ @RELEASES_DIR@
sum() { @ALGORITHM@sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  # Bounded: 15 s to connect, 15 minutes in all, retried on any error: a stalled mirror cannot hang the step.
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    # The file name only: the URL may hold a mirror's credentials, and pulumi-command puts a failed step's output
    # into its error, logging off or not (commandOutputs.go).
    echo "checksum mismatch for @FILENAME@: expected @ALGORITHM@ $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "@COMPONENT@ @VERSION@ is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  @UNPACK@
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  @PLACE@
  mv -T "$staging" "$release"
  echo "installed @COMPONENT@ @VERSION@ into $release"
fi
@SWITCH_NOW@
