#!/usr/bin/env bash
# What a person sees, looked at as a person would (scripts/test.sh runs it):
#
# 1. the CLI in a real terminal (tmux, 160x40) auditing a 10,000-user stand-in fleet at
#    a rate limit: capture-pane while it runs must show the progress bar moving, and
#    at the end the table and exit code 3 (drifted users found);
# 2. its HTML report in headless Chromium: a screenshot (docs/report.png, kept in the
#    repository for the docs) and --dump-dom, which must show the counts, the chart
#    and a finding.
#
# Installs tmux and Chromium with apt when they are missing. Leaves its captures in
# target/ui/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/target-dir.sh
OUT=target/ui
mkdir -p "$OUT"

install() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "installing $2 (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}
install tmux tmux
install chromium chromium

cargo build -q --features transfer-chroot/cli --bin transfer-chroot -p transfer-chroot
cargo build -q -p transfer-standin

SERVER=s-0123456789abcdef0
# A second server, switched to a Lambda identity provider: no stored user is chrooted
# there, and the report must say so before anything else.
LAMBDA_SERVER=s-0123456789abcdefa
cat >"$OUT/seed.json" <<EOF
{"Servers": [{"ServerId": "$LAMBDA_SERVER", "IdentityProviderType": "AWS_LAMBDA",
  "Users": [{"UserName": "stale", "HomeDirectory": "/acme-sftp/home/stale"}]},
 {"ServerId": "$SERVER", "DirectoryListingOptimization": "ENABLED", "GenerateUsers": [
  {"Count": 5000, "Prefix": "drift", "HomeDirectory": "/acme-sftp/home/\${UserName}"},
  {"Count": 4000, "Prefix": "chroot", "HomeDirectoryType": "LOGICAL", "HomeDirectory": "/acme-sftp/home/\${UserName}"},
  {"Count": 1000, "Prefix": "wrong", "HomeDirectoryType": "LOGICAL", "HomeDirectory": "/elsewhere/\${UserName}"}]}]}
EOF

standin_log="$OUT/standin.log"
"$TARGET_DIR/debug/transfer-standin" --listen 127.0.0.1:0 --seed "$OUT/seed.json" >"$standin_log" 2>&1 &
standin_pid=$!
session=transfer-chroot-ui-$$
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  kill "$standin_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$standin_log" | head -1 || true)
  [[ -n $endpoint ]] && break
  sleep 0.1
done
[[ -n ${endpoint:-} ]] || { echo "the stand-in did not start" >&2; cat "$standin_log" >&2; exit 1; }
# 5,000 describes (the LOGICAL users) at 500 requests a second: about 10 s of bar.
curl -sf -X POST "$endpoint/_standin/rate-limits" \
  -d '[{"Operation": "*", "RequestsPerSecond": 500, "Burst": 50}]' >/dev/null

report="$PWD/$OUT/report.html"
rm -f "$report" "$OUT"/pane-*.txt
cmd="env -i PATH=$PATH TERM=xterm-256color AWS_ACCESS_KEY_ID=AKIDUI AWS_SECRET_ACCESS_KEY=ui-secret \
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
$TARGET_DIR/debug/transfer-chroot --endpoint-url $endpoint --region us-east-1 \
--home-root /acme-sftp/home audit --server $SERVER --server $LAMBDA_SERVER --html $report; echo EXIT=\$?; sleep 600"
tmux new-session -d -s "$session" -x 160 -y 40 "$cmd"

# Capture the pane while it runs, until the exit line shows.
positions=()
for i in $(seq 1 240); do
  pane=$(tmux capture-pane -p -t "$session")
  printf '%s\n' "$pane" >"$OUT/pane-$i.txt"
  if grep -q '^EXIT=' <<<"$pane"; then break; fi
  pos=$(grep -o '[0-9]*/10000 classified' <<<"$pane" | tail -1 | cut -d/ -f1 || true)
  [[ -n $pos ]] && positions+=("$pos")
  sleep 0.25
done
final=$(tmux capture-pane -p -S -60 -t "$session")
printf '%s\n' "$final" >"$OUT/pane-final.txt"

fail() { echo "UI check failed: $*" >&2; exit 1; }
distinct=$(printf '%s\n' "${positions[@]:-}" | sort -un | grep -c . || true)
echo "progress bar positions seen: ${positions[*]:-none}"
((distinct >= 3)) || fail "the bar was not seen moving (positions: ${positions[*]:-none})"
first=${positions[0]}; last=${positions[-1]}
((last > first)) || fail "the bar went $first -> $last"
grep -lq 'ETA [0-9]' "$OUT"/pane-*.txt || fail "no ETA on the bar"
grep -q 'All servers' <<<"$final" || fail "no counts table at the end"
grep -q 'EXIT=3' <<<"$final" || fail "exit code is not 3 (drifted users found)"
grep -q '10000 targets: 4000 chrooted, 5000 drifted (0 fixed), 1000 need attention' <<<"$final" \
  || fail "the final line's counts"
echo "terminal: bar moved $first -> $last over ${#positions[@]} captures; table and exit 3 shown"

chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$PWD/$OUT/chromium-profile" --hide-scrollbars)
rm -rf "$OUT/chromium-profile"
"${chrome[@]}" --window-size=1280,1500 --screenshot="$PWD/docs/report.png" "file://$report" \
  >"$OUT/chromium.log" 2>&1
"${chrome[@]}" --dump-dom "file://$report" >"$OUT/report.dom.html" 2>>"$OUT/chromium.log"
[[ -s docs/report.png ]] || fail "no screenshot"
dom="$OUT/report.dom.html"
grep -q '<svg id="chart"' "$dom" || fail "no chart in the DOM"
grep -q 'data-class="Drifted"' "$dom" || fail "no Drifted bar"
grep -q '<td class="n">5000</td>' "$dom" || fail "the drifted count is not in the DOM"
grep -q 'home /acme-sftp/home/drift0001 is not chrooted' "$dom" || fail "a finding is not in the DOM"
grep -q 'id="server-findings"' "$dom" || fail "the server on a custom identity provider is not in the DOM"
grep -q "<td>$LAMBDA_SERVER</td><td class=\"NeedsAttention\">AWS_LAMBDA</td>" "$dom" || fail "the server finding's row"
python3 - "$dom" <<'PY' || fail "the server findings are not before the counts"
import sys
dom = open(sys.argv[1]).read()
sys.exit(not (0 <= dom.find('id="server-findings"') < dom.find('id="counts"')))
PY
grep -q '<dt>Account</dt><dd>111122223333</dd>' "$dom" || fail "the account is not named"
grep -q 'AWS_LAMBDA' "$OUT/pane-final.txt" || fail "the terminal's table does not show the server finding"
echo "browser: docs/report.png ($(stat -c %s docs/report.png) bytes); the DOM shows the server finding first, the account, the counts, the chart and a finding"
