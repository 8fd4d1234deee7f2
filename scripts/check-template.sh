#!/usr/bin/env bash
# Validates the SAM template and the custom-resource example, offline and without
# credentials. Installs cfn-lint and the SAM CLI into .venv (repo root) if missing.
#
#   cfn-lint                      schema, types, intrinsic functions, best practices
#   sam validate --lint           the same rules through SAM CLI
#   sam validate --region ...     the SAM translator itself: catches what the linters
#                                 miss (e.g. an unknown property on an SQS event)
#
# The IAM and API-authorisation rules are checked by tests/it/template.rs (cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
if [[ ! -x $VENV/bin/sam || ! -x $VENV/bin/cfn-lint ]]; then
  echo "installing aws-sam-cli and cfn-lint into $VENV (about a minute, once)"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check aws-sam-cli cfn-lint
fi
export PATH="$PWD/$VENV/bin:$PATH"

# No account is touched: the translator only needs a region, and dummy credentials
# keep botocore from probing the instance metadata service.
export SAM_CLI_TELEMETRY=0
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-AKIDEXAMPLEVALIDATEONLY}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-validate-only}"
unset AWS_PROFILE

echo "cfn-lint $(cfn-lint --version | awk '{print $2}'), $(sam --version)"
cfn-lint template.yaml examples/custom-resource.yaml
echo "cfn-lint: template.yaml examples/custom-resource.yaml clean"
sam validate --lint --template template.yaml
sam validate --template template.yaml --region us-east-1
