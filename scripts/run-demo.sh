#!/usr/bin/env bash
# Starts the service on embedded defaults with demo data: `make run` calls this.
set -euo pipefail
BIN=$1 HOST=$2 PORT=$3
# Demo mode opens the service hours itself (DEMO_OPEN_ALL_HOURS, see the banner); no DEBUG, so
# unknown addresses get the service's own 404 page.
export CARDAP_DEMO=1
VAR=${CARDAP_VAR_DIR:-var}
mkdir -p "$VAR"
echo "== compiling the translations, migrating the database (var/cardap.sqlite3), loading the demo data"
"$BIN/python" manage.py compilemessages -v 0
"$BIN/python" manage.py migrate --noinput -v 0
# load_demo issues the demo terminal a new credential on every run, into $VAR/demo-terminal.credential
# (mode 0600, never printed): the agent started below reads it from there.
"$BIN/python" manage.py load_demo --credential-file "$VAR/demo-terminal.credential"
"$BIN/python" manage.py demo_revocations
echo
echo "  Card AP loading service (demo mode): http://$HOST:$PORT/"
echo "  Demo mode: card operations may start at any hour (real hours: SERVICE_OPEN_TIME/SERVICE_CLOSE_TIME)."
echo "  Sign in with a demo user above and the password demo-password-2026; the next page shows"
echo "  the user's current one-time code (demo mode only). Elsewhere: $BIN/python manage.py demo_otp USERNAME"
echo

# The virtual My Number Card in a PC/SC reader (pcscd + vpcd) and the real terminal agent of the
# demo terminal 窓口端末1 on it, so the browser's card operations reach the card exactly as at a
# counter. Stopped again when the server stops; pcscd only if started here.
VCARD_PORT=${VCARD_PORT:-35963}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! pidof pcscd >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v pcscd >/dev/null; then
    pcscd -f >"$VAR/pcscd.log" 2>&1 &
    pids+=($!)
    sleep 1
  fi
fi
if pidof pcscd >/dev/null 2>&1 && [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; then
  "$BIN/python" -m vcard serve --state "$VAR/demo-card.json" --port "$VCARD_PORT" >"$VAR/vcard.log" 2>&1 &
  pids+=($!)
  slot=$((VCARD_PORT - 35963))
  reader="Virtual PCD 00 0$slot"
  echo "  Virtual My Number Card: PC/SC reader \"$reader\" (state $VAR/demo-card.json;"
  echo "  try: pcsc_scan -t 3, opensc-tool --list-readers, $BIN/python -m vcard info --state $VAR/demo-card.json)"
  if [ -x "$BIN/cardap-agent" ]; then
    # The agent retries until the server below answers; its log says what it did, never APDU data.
    "$BIN/cardap-agent" run --server "http://127.0.0.1:$PORT" \
      --credential-file "$VAR/demo-terminal.credential" --reader "$reader" >"$VAR/agent.log" 2>&1 &
    pids+=($!)
    echo "  Terminal agent: cardap-agent for デモ市 窓口端末1 on \"$reader\" (log $VAR/agent.log)"
  else
    echo "  Terminal agent not started: $BIN/cardap-agent is missing (make install installs ./agent)."
  fi
else
  echo "  Virtual My Number Card not started: pcscd/vpcd are not available here (as root:"
  echo "  scripts/system-deps.sh run); the service runs without a card terminal."
fi
echo
# The same ASGI server as in production and in the tests, so the agents' long poll behaves the same.
# In the background so that a signal to this script stops it and everything started here.
"$BIN/python" -m uvicorn config.asgi:application --host "$HOST" --port "$PORT" --timeout-graceful-shutdown 5 &
server=$!
pids=("$server" "${pids[@]}")
status=0
wait "$server" || status=$?
exit "$status"
