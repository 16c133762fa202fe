for unit in @UNITS@; do
  echo "--- last lines of the $unit log on @HOST@:" >&2
  journalctl -u "$unit" --no-pager -n 20 >&2 || true
done
