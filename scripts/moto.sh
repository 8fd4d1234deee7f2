#!/usr/bin/env bash
# Starts moto in server mode (a real S3 and SQS implementation) on 127.0.0.1, for the
# tests and the demo; installs it into .venv first if needed. Source it:
#   source scripts/moto.sh   → MOTO_ENDPOINT=http://127.0.0.1:PORT, MOTO_PID; stop_moto
VENV=.venv
# 5.2.4 or later: its Identity Store has IsMemberInGroups and GetUserId (the directory
# tests), besides the S3, SQS, Security Hub and EventBridge the other tests use.
MOTO='moto[server]>=5.2.4'
moto_fits() {
  "$VENV/bin/python" -c 'import sys, moto
sys.exit(tuple(int(x) for x in moto.__version__.split(".")[:3]) < (5, 2, 4))' 2>/dev/null
}
if [[ ! -x $VENV/bin/moto_server ]] || ! moto_fits; then
  echo "installing $MOTO into $VENV (about a minute, once)"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$MOTO"
fi
MOTO_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >target/moto.log 2>&1 &
MOTO_PID=$!
export MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
stop_moto() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null || { echo "moto_server did not start (target/moto.log)"; cat target/moto.log; exit 1; }
echo "moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') on $MOTO_ENDPOINT"
