"""What Status says about limits the host cannot enforce."""

import os

from crihelpers import CRITestCase, cgroup2_mount, pb


def host_has_pids_controller():
    root = cgroup2_mount()
    if not root:
        return False
    try:
        with open(os.path.join(root, "cgroup.controllers")) as f:
            return "pids" in f.read().split()
    except OSError:
        return False


class PidsLimitStatusTest(CRITestCase):
    daemon_kwargs = {"extra_args": ["--pod-pids-limit", "100"]}

    def test_an_unenforceable_pids_limit_is_said_in_status_and_at_start(self):
        conditions = {c.type: c for c in self.client.rt.Status(pb.StatusRequest(), timeout=10).status.conditions}
        self.assertTrue(conditions["RuntimeReady"].status)
        self.assertTrue(conditions["NetworkReady"].status)
        if host_has_pids_controller():
            self.assertNotIn("PodPidsLimitEnforced", conditions)
        else:
            self.assertIn("PodPidsLimitEnforced", conditions)
            self.assertFalse(conditions["PodPidsLimitEnforced"].status)
            self.assertIn("pids limit 100 is not enforced", conditions["PodPidsLimitEnforced"].message)
            self.assertIn("pids limit 100 is not enforced", self.daemon.stderr_text())
