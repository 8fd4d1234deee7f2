"""template-rules/parliament.yaml, the config scripts/check-template.sh runs
parliament with over docs/iam/*.json.

- every suppression in it gives its reason, and names a finding parliament has;
- with it, parliament still catches the defect that started the project's use of
  AWS's reference (transfer:UpdateAccess on server ARNs) and passes the fix, so the
  step is not vacuous.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

sys.dont_write_bytecode = True

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "parliament.yaml"
PARLIAMENT_VERSION = "1.6.4"

SERVER = "arn:aws:transfer:us-east-1:111122223333:server/s-0123456789abcdef0"
# The role's statements for the accesses, before and after the fix.
BEFORE = [
    {"Sid": "ChrootAccessesOfAllowedServers", "Effect": "Allow",
     "Action": ["transfer:DescribeAccess", "transfer:UpdateAccess", "transfer:DescribeServer"],
     "Resource": [SERVER]},
]
AFTER = [
    {"Sid": "ChrootAccessesOfAllowedServers", "Effect": "Allow",
     "Action": ["transfer:DescribeAccess", "transfer:DescribeServer"], "Resource": [SERVER]},
    {"Sid": "ChrootAccesses", "Effect": "Allow", "Action": "transfer:UpdateAccess", "Resource": "*"},
    {"Sid": "FindTaggedServers", "Effect": "Allow", "Action": "transfer:ListServers", "Resource": "*"},
    {"Sid": "WriteTraces", "Effect": "Allow",
     "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"},
]


def parliament_command() -> list[str]:
    beside = Path(sys.executable).parent / "parliament"
    found = str(beside) if beside.exists() else shutil.which("parliament")
    if not found:
        raise unittest.SkipTest("parliament not found beside this Python nor on PATH")
    return [found]


class ParliamentConfig(unittest.TestCase):
    def test_every_suppression_has_a_reason(self) -> None:
        config = yaml.safe_load(CONFIG.read_text())
        self.assertIsInstance(config, dict, "parliament reads a mapping (an empty one is {})")
        for issue, settings in config.items():
            with self.subTest(issue):
                self.assertIsInstance(settings, dict)
                suppresses = bool(settings.get("ignore_locations")) or str(
                    settings.get("severity", "")
                ).upper() in ("MUTE", "INFO")
                if suppresses:
                    reason = settings.get("reason")
                    self.assertTrue(isinstance(reason, str) and reason.strip(), "a reason: beside it")
                for item in settings.get("ignore_locations") or []:
                    self.assertNotIn("reason", item, "a reason inside a location is matched, not read")

    def test_every_entry_is_a_finding_parliament_has(self) -> None:
        try:
            dist = importlib.metadata.distribution("parliament")
        except importlib.metadata.PackageNotFoundError:
            self.skipTest("parliament is not installed")
        self.assertEqual(dist.version, PARLIAMENT_VERSION, "scripts/check-template.sh pins it")
        known = yaml.safe_load(Path(dist.locate_file("parliament/config.yaml")).read_text())
        unknown = set(yaml.safe_load(CONFIG.read_text())) - set(known)
        self.assertEqual(unknown, set(), "not findings of parliament's config.yaml")

    def run_parliament(self, statements: list[dict]) -> list[dict]:
        with tempfile.TemporaryDirectory(prefix="parliament-") as tmp:
            path = Path(tmp) / "policy.json"
            path.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2))
            run = subprocess.run(
                [*parliament_command(), "--config", str(CONFIG), "--json", "--files", str(path)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        if run.returncode not in (0, 1):
            raise AssertionError(f"parliament failed ({run.returncode}):\n{run.stderr}{run.stdout}")
        return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]

    def test_it_catches_update_access_on_server_arns(self) -> None:
        found = self.run_parliament(BEFORE)
        mismatched = [
            d["action"] for f in found if f["issue"] == "RESOURCE_MISMATCH" for d in f["detail"]
        ]
        self.assertIn("transfer:UpdateAccess", mismatched, found)

    def test_it_passes_actions_without_resource_type_on_star(self) -> None:
        self.assertEqual(self.run_parliament(AFTER), [])


if __name__ == "__main__":
    unittest.main()
