# switch LINK TARGET: point the path units and scripts name at a release's binary.
switch() {
  local link=$1 target=$2
  [ "$(readlink "$link" 2>/dev/null)" = "$target" ] && return 0
  if [ ! -x "$target" ]; then
    echo "$target is not installed (its install step runs first)" >&2
    return 1
  fi
  install -d -m 0755 "$(dirname "$link")"
  ln -sfn "$target" "$link.new"
  mv -Tf "$link.new" "$link"
  echo "switched $link to $target"
}
# prune COMPONENT LINK...: remove the component's release directories that none of its links points into.
prune() {
  local component=$1 dir link used
  shift
  for dir in @RELEASES_DIR@/"$component"-*; do
    [ -d "$dir" ] || continue
    case "$dir" in *.new) continue ;; esac
    used=no
    for link in "$@"; do
      case "$(readlink "$link" 2>/dev/null)" in "$dir"/*) used=yes ;; esac
    done
    if [ "$used" = no ]; then
      rm -rf "$dir"
      echo "removed $dir, which no link uses"
    fi
  done
}
switch_releases() {
  @SWITCHES@
  @PRUNES@
}
