# Reads one boot of a host's journal (journalctl -o short-unix) and prints, for each unit systemd
# stopped after the reboot or power-off was requested, "unit seconds" (from "Stopping unit..." to
# "Stopped unit."/"unit: Failed ..."); a unit still stopping when the journal ends is printed with
# the time until the journal's last line and "unfinished". Used by run.sh to name the unit that
# held a shutdown up.
/systemd-logind\[[0-9]+\]: (The system will (reboot|power off) now|System is (rebooting|powering down))/ {
  down = 1
}
down && /systemd\[1\]: Stopping [^ ]+/ {
  unit = $0
  sub(/.*systemd\[1\]: Stopping /, "", unit)
  sub(/( - .*|\.\.\.)$/, "", unit)
  started[unit] = $1
}
down && /systemd\[1\]: Stopped [^ ]+/ {
  unit = $0
  sub(/.*systemd\[1\]: Stopped /, "", unit)
  sub(/( - .*|\.)$/, "", unit)
  if (unit in started) {
    printf "%s %.1f\n", unit, $1 - started[unit]
    delete started[unit]
  }
}
{ last = $1 }
END {
  for (unit in started) printf "%s %.1f unfinished\n", unit, last - started[unit]
}
