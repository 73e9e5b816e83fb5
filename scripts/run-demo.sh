#!/usr/bin/env bash
# Starts the service on embedded defaults with demo data: `make run` calls this.
set -euo pipefail
BIN=$1 HOST=$2 PORT=$3
# Demo mode opens the service hours itself (DEMO_OPEN_ALL_HOURS, see the banner); no DEBUG, so
# unknown addresses get the service's own 404 page.
export CARDAP_DEMO=1
echo "== compiling the translations, migrating the database (var/cardap.sqlite3), loading the demo data"
"$BIN/python" manage.py compilemessages -v 0
"$BIN/python" manage.py migrate --noinput -v 0
"$BIN/python" manage.py load_demo
"$BIN/python" manage.py demo_revocations
echo
echo "  Card AP loading service (demo mode): http://$HOST:$PORT/"
echo "  Demo mode: card operations may start at any hour (real hours: SERVICE_OPEN_TIME/SERVICE_CLOSE_TIME)."
echo "  Sign in with a demo user above and the password demo-password-2026; the next page shows"
echo "  the user's current one-time code (demo mode only). Elsewhere: $BIN/python manage.py demo_otp USERNAME"
echo

# The virtual My Number Card in a PC/SC reader (pcscd + vpcd), so the terminal agent, OpenSC and
# pcsc_scan see a card. Stopped again when the server stops; pcscd only if started here.
VCARD_PORT=${VCARD_PORT:-35963}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if ! pidof pcscd >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v pcscd >/dev/null; then
    pcscd -f >var/pcscd.log 2>&1 &
    pids+=($!)
    sleep 1
  fi
fi
if pidof pcscd >/dev/null 2>&1 && [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; then
  "$BIN/python" -m vcard serve --state var/demo-card.json --port "$VCARD_PORT" >var/vcard.log 2>&1 &
  pids+=($!)
  slot=$((VCARD_PORT - 35963))
  echo "  Virtual My Number Card: PC/SC reader \"Virtual PCD 00 0$slot\" (state var/demo-card.json;"
  echo "  try: pcsc_scan -t 3, opensc-tool --list-readers, $BIN/python -m vcard info --state var/demo-card.json)"
else
  echo "  Virtual My Number Card not started: pcscd/vpcd are not available here (as root:"
  echo "  scripts/system-deps.sh run); the service runs without a card terminal."
fi
echo
"$BIN/python" manage.py runserver "$HOST:$PORT"
