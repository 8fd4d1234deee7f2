#!/usr/bin/env bash
# Validates the SAM template and the custom-resource example, offline and without
# credentials. Installs cfn-lint and the SAM CLI into .venv (repo root), and checkov
# into .venv/checkov, if missing.
#
#   cfn-lint                      schema, types, intrinsic functions, best practices,
#     --append-rules template-rules/rules
#                                 and the project's rules: least-privilege IAM and
#                                 IAM authorisation on every API route (E9101-E9109)
#   template-rules/tests          those rules against bad and good snippets
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
if [[ ! -x $VENV/bin/sam || ! -x $VENV/bin/cfn-lint ]] || ! cfn_lint_fits; then
  echo "installing aws-sam-cli and $CFN_LINT into $VENV (about a minute, once)"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check aws-sam-cli "$CFN_LINT"
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
