#!/usr/bin/env bash
# Starts the service on embedded defaults with demo data: `make run` calls this.
set -euo pipefail
BIN=$1 HOST=$2 PORT=$3
export CARDAP_DEMO=1 DEBUG=1
"$BIN/python" manage.py compilemessages -v 0
"$BIN/python" manage.py migrate --noinput -v 0
"$BIN/python" manage.py load_demo
"$BIN/python" manage.py demo_revocations
echo
echo "  Card AP loading service: http://$HOST:$PORT/"
echo "  Sign in as one of the demo users above; the password and the one-time code are printed"
echo "  there (codes come from: $BIN/python manage.py demo_otp USERNAME)."
echo
exec "$BIN/python" manage.py runserver "$HOST:$PORT"
