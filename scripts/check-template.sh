#!/usr/bin/env bash
# Validates the SAM template and the custom-resource example, offline and without
# credentials. Installs cfn-lint and the SAM CLI into .venv (repo root) if missing.
#
#   cfn-lint                      schema, types, intrinsic functions, best practices,
#     --append-rules template-rules/rules
#                                 and the project's rules: least-privilege IAM and
#                                 IAM authorisation on every API route (E9101-E9109)
#   template-rules/tests          those rules against bad and good snippets
#   sam validate --lint           the built-in rules through SAM CLI
#   sam validate --region ...     the SAM translator itself: catches what the linters
#                                 miss (e.g. an unknown property on an SQS event)
#
# What needs the Rust code (Timeout vs the SDK timeouts, the variables the config
# reads, the contract's routes) stays in tests/it/template.rs (cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
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
