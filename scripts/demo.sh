#!/usr/bin/env bash
# Runs the real function binary under cargo-lambda's Lambda runtime emulator, against
# the local Transfer Family stand-in, and invokes every sample event in events/,
# printing each structured result. No AWS account needed; installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/target-dir.sh

STANDIN_ADDR=127.0.0.1:9124   # events/cfn-*.json send their ResponseURL here
# ...which the function answers only because demo/config.env lists it in
# CFN_RESPONSE_ORIGINS (any other ResponseURL that is not CloudFormation's is refused).
LAMBDA_PORT=9123
VENV=$ROOT/.venv

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }

if ! grep -Eq "^CFN_RESPONSE_ORIGINS=(.*,)?[[:space:]]*http://$STANDIN_ADDR[[:space:]]*(,|$)" demo/config.env; then
  say "demo/config.env: CFN_RESPONSE_ORIGINS must list http://$STANDIN_ADDR (the stand-in's response sink)"
  exit 1
fi

if [ ! -x "$VENV/bin/cargo-lambda" ]; then
  say "installing cargo-lambda into .venv (pip)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check cargo-lambda
fi
export PATH="$VENV/bin:$PATH"

say "building the function and the stand-in"
cargo build -q --features cli --bin bootstrap --bin transfer-chroot && cargo build -q -p transfer-standin

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

set -m  # background jobs get their own process group, so they can be stopped whole
"$TARGET_DIR/debug/transfer-standin" --listen "$STANDIN_ADDR" --seed demo/seed.json >target/demo-standin.log 2>&1 &
pids+=($!)

# A real S3 on loopback (moto) for the home-folder check: the demo's bucket with some
# homes' folder objects, so the results show what a missing one looks like.
say "starting moto (S3) on loopback"
source scripts/moto.sh
pids+=("$MOTO_PID")
"$VENV/bin/python" - "$MOTO_ENDPOINT" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="AKIDDEMO", aws_secret_access_key="demo-secret")
s3.create_bucket(Bucket="acme-sftp")
for key in ["home/bob/", "home/dave/", "groups/finance/", "groups/engineering/"]:
    s3.put_object(Bucket="acme-sftp", Key=key, Body=b"")
print("s3://acme-sftp holds", ", ".join(o["Key"] for o in s3.list_objects_v2(Bucket="acme-sftp")["Contents"]))
PY

# IAM Identity Center's Identity Store on the same moto: the directory the function
# reads group membership from (IDENTITY_STORE_ID). alice is in sftp-finance, bob in
# sftp-engineering (demo/config.env's two profiles). moto picks the user and group ids:
# the directory samples are copied to target/demo-events/ with moto's ids in place of
# theirs (events/DIRECTORY-SOURCES.md).
say "seeding the Identity Store (moto) and the directory samples' ids"
DEMO_EVENTS=target/demo-events
mkdir -p "$DEMO_EVENTS"
"$VENV/bin/python" - "$MOTO_ENDPOINT" "$DEMO_EVENTS" <<'PY'
import glob, json, os, sys
import boto3
ids = boto3.client("identitystore", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIDDEMO", aws_secret_access_key="demo-secret")
store = "d-9067a1b2c3"
def user(name):
    return ids.create_user(IdentityStoreId=store, UserName=name, DisplayName=name,
                           Name={"GivenName": name, "FamilyName": "Example"})["UserId"]
def group(name):
    return ids.create_group(IdentityStoreId=store, DisplayName=name)["GroupId"]
alice, bob = user("alice"), user("bob")
finance, engineering = group("sftp-finance"), group("sftp-engineering")
membership = ids.create_group_membership(IdentityStoreId=store, GroupId=finance,
                                         MemberId={"UserId": alice})["MembershipId"]
ids.create_group_membership(IdentityStoreId=store, GroupId=engineering, MemberId={"UserId": bob})
json.dump({"alice": alice, "bob": bob, "finance": finance, "engineering": engineering,
           "alice_in_finance": membership},
          open(os.path.join(sys.argv[2], "directory.json"), "w"))
samples = {"9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001": alice,
           "9067a1b2c3-1a2b3c4d-0002-4e5f-8a9b-000000000002": bob,
           "9067a1b2c3-5e6f7a8b-0001-4c2d-9e0f-000000000101": finance,
           "9067a1b2c3-5e6f7a8b-0002-4c2d-9e0f-000000000102": engineering}
for path in glob.glob("events/directory-*.json"):
    text = open(path).read()
    for sample, real in samples.items():
        text = text.replace(sample, real)
    open(os.path.join(sys.argv[2], os.path.basename(path)), "w").write(text)
print(f"{store}: alice in sftp-finance, bob in sftp-engineering")
PY

# The function's configuration: demo/config.env (single-quoted so ${UserName} stays
# literal) plus the SDK settings that point it at the stand-in (and moto).
ENV_FILE=target/demo.env
{
  grep -v '^\s*#' demo/config.env | grep '=' | while IFS='=' read -r k v; do printf "%s='%s'\n" "$k" "$v"; done
  echo "AWS_ENDPOINT_URL_TRANSFER='http://$STANDIN_ADDR'"
  echo "AWS_ENDPOINT_URL_S3='$MOTO_ENDPOINT'"
  echo "IDENTITY_STORE_ID='d-9067a1b2c3'"
  echo "AWS_ENDPOINT_URL_IDENTITYSTORE='$MOTO_ENDPOINT'"
  echo "AWS_REGION='us-east-1'"
  echo "AWS_ACCESS_KEY_ID='AKIDDEMO'"
  echo "AWS_SECRET_ACCESS_KEY='demo-secret'"
  echo "AWS_EC2_METADATA_DISABLED='true'"
  echo "AWS_LAMBDA_LOG_FORMAT='JSON'"
} >"$ENV_FILE"

cargo lambda watch --quiet --ignore-changes -A 127.0.0.1 -P "$LAMBDA_PORT" \
  --bin bootstrap --features cli --env-file "$ENV_FILE" >target/demo-lambda.log 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
  (exec 3<>/dev/tcp/127.0.0.1/$LAMBDA_PORT) 2>/dev/null && (exec 3<>/dev/tcp/${STANDIN_ADDR/:/\/}) 2>/dev/null && break
  sleep 0.5
done

status=0
# A story order: direct commands, directory events, drift (CloudTrail), the API,
# CloudFormation, then an audit of the whole (demo) fleet.
if [ $# -gt 0 ]; then events=("$@"); else
  events=(events/direct-*.json events/eventbridge-*.json
    events/directory-identitystore-user-updated.json events/directory-cloudtrail-create-group-membership.json
    events/directory-identitystore-membership-created.json events/directory-scim-patch-group.json
    events/directory-identitystore-group-updated.json events/directory-okta-membership-add.json
    events/directory-okta-membership-remove.json events/directory-cloudtrail-delete-group-membership.json
    events/cloudtrail-*.json events/sqs-*.json events/apigw-*.json events/cfn-*.json events/audit-*.json)
fi
# One membership change, end to end: alice leaves sftp-finance for sftp-engineering in
# the directory, with no event of its own; then an older CloudTrail record of her
# joining finance arrives late. It only names her: the directory says engineering.
membership_change() {
  say "── (in the directory) alice leaves sftp-finance and joins sftp-engineering"
  "$VENV/bin/python" - "$MOTO_ENDPOINT" "$DEMO_EVENTS/directory.json" <<'PY'
import json, sys
import boto3
ids = boto3.client("identitystore", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIDDEMO", aws_secret_access_key="demo-secret")
d = json.load(open(sys.argv[2]))
ids.delete_group_membership(IdentityStoreId="d-9067a1b2c3", MembershipId=d["alice_in_finance"])
ids.create_group_membership(IdentityStoreId="d-9067a1b2c3", GroupId=d["engineering"],
                            MemberId={"UserId": d["alice"]})
print("alice: sftp-engineering")
PY
}
# Someone changes alice by hand (as the console or the CLI would, straight to Transfer):
# the CloudTrail record of that call is events/cloudtrail-update-user.json.
hand_change() {
  say "── (by hand) UpdateUser alice: HomeDirectoryType PATH, outside the chroot"
  python3 - "$STANDIN_ADDR" <<'PY'
import json, sys, urllib.request
body = json.dumps({"ServerId": "s-0123456789abcdef0", "UserName": "alice",
                   "HomeDirectoryType": "PATH", "HomeDirectory": "/acme-sftp/home/alice"}).encode()
req = urllib.request.Request("http://" + sys.argv[1] + "/", data=body, method="POST", headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TransferService.UpdateUser",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDADMIN/20261201/us-east-1/transfer/aws4_request"})
print(urllib.request.urlopen(req).read().decode())
PY
}

for f in "${events[@]}"; do
  [ "$f" = events/cloudtrail-update-user.json ] && hand_change
  [ "$f" = events/directory-cloudtrail-create-group-membership.json ] && membership_change
  say "── $f"
  data=$f
  # A directory sample with moto's ids in place of its own.
  case $f in events/directory-*) data=$DEMO_EVENTS/$(basename "$f") ;; esac
  if ! cargo lambda invoke -A 127.0.0.1 -P "$LAMBDA_PORT" --data-file "$data" bootstrap 2>&1 \
      | python3 -c 'import json,sys
raw=sys.stdin.read()
try: print(json.dumps(json.loads(raw), indent=2, ensure_ascii=False))
except Exception: print(raw.strip())'; then
    status=1
  fi
done

say "── what the stand-in received (operation → count)"
python3 - "$STANDIN_ADDR" <<'PY'
import json, sys, urllib.request, collections
base = "http://" + sys.argv[1]
reqs = json.load(urllib.request.urlopen(base + "/_standin/requests"))
print(dict(collections.Counter(r["Operation"] for r in reqs)))
resp = json.load(urllib.request.urlopen(base + "/_standin/responses"))
for r in resp:
    print("CloudFormation response:", r["Body"].get("Status"), r["Body"].get("PhysicalResourceId"))
PY
say "── the operator's CLI on the same fleet: transfer-chroot audit (read-only; exit 3: found)"
cli_status=0
env AWS_ACCESS_KEY_ID=AKIDDEMO AWS_SECRET_ACCESS_KEY=demo-secret AWS_CONFIG_FILE=/dev/null \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
  "$TARGET_DIR/debug/transfer-chroot" --config demo/config.env --endpoint-url "http://$STANDIN_ADDR" \
  --region us-east-1 audit --html target/demo-report.html || cli_status=$?
[ "$cli_status" -eq 0 ] || [ "$cli_status" -eq 3 ] || status=1
say "report: $PWD/target/demo-report.html (exit $cli_status)"
say "function logs: target/demo-lambda.log"
exit $status
