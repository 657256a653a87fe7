"""podshim.v1.PodService: a whole manifest under the daemon's supervision — probes, restarts,
phases and conditions — on the same socket as the CRI, through an independent client."""

import glob
import os
import threading
import time
import uuid

import grpc

from crihelpers import CRITestCase, find_container_pid, proc_starttime
from podshim.v1 import pods_pb2 as ppb
from podshim.v1 import pods_pb2_grpc as ppbg

MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {{ name: svc, uid: {uid} }}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: [sh, -c, "sleep 1; exec httpd -f -p 8080 -h /"]
    readinessProbe: {{ httpGet: {{ path: /etc/hostname, port: 8080 }}, periodSeconds: 1 }}
  - name: crash
    image: busybox
    command: [sh, -c, "exit 2"]
"""


class PodServiceTest(CRITestCase):

    def stub(self):
        return ppbg.PodServiceStub(self.client.channel)

    def wait_status(self, stub, pod_id, predicate, timeout=30):
        deadline = time.time() + timeout
        status = None
        while time.time() < deadline:
            status = stub.PodStatus(ppb.PodStatusRequest(pod_id=pod_id), timeout=10)
            if predicate(status):
                return status
            time.sleep(0.2)
        self.fail("condition not reached; last status:\n%s" % status)

    def test_manifest_pod_phases_conditions_and_events(self):
        stub = self.stub()
        events = []

        def watch():
            try:
                for event in stub.WatchPods(ppb.WatchPodsRequest(), timeout=60):
                    events.append(event.message)
            except grpc.RpcError:
                pass

        threading.Thread(target=watch, daemon=True).start()
        time.sleep(0.3)
        uid = "svc-" + uuid.uuid4().hex[:8]
        self.track(uid=uid)
        pod_id = stub.RunPod(ppb.RunPodRequest(manifest=MANIFEST.format(uid=uid)), timeout=30).pod_id
        self.assertEqual(pod_id, uid)
        status = self.wait_status(stub, pod_id, lambda s: any(c.name == "web" and c.ready for c in s.containers))
        self.assertEqual(status.phase, "Running")
        crash = self.wait_status(stub, pod_id, lambda s: any(
            c.name == "crash" and c.reason == "CrashLoopBackOff" for c in s.containers))
        crash_state = [c for c in crash.containers if c.name == "crash"][0]
        self.assertEqual(crash_state.state, "Waiting")
        self.assertEqual(crash_state.exit_code, 2)
        conditions = {c.type: c.status for c in crash.conditions}
        self.assertFalse(conditions["Ready"], "a crash-looping container keeps the pod not ready")
        listed = stub.ListPods(ppb.ListPodsRequest(), timeout=10).pods
        self.assertIn(pod_id, [p.pod_id for p in listed])

        stub.StopPod(ppb.StopPodRequest(pod_id=pod_id, grace_period_seconds=2), timeout=10)
        final = self.wait_status(stub, pod_id, lambda s: s.finished)
        self.assertIn(final.phase, ("Failed", "Succeeded"))
        self.assertTrue(all(c.state == "Terminated" for c in final.containers), final)
        stub.RemovePod(ppb.RemovePodRequest(pod_id=pod_id), timeout=60)
        with self.assertRaises(grpc.RpcError) as gone:
            stub.PodStatus(ppb.PodStatusRequest(pod_id=pod_id), timeout=10)
        self.assertEqual(gone.exception.code(), grpc.StatusCode.NOT_FOUND)
        time.sleep(0.3)
        joined = "\n".join(events)
        self.assertIn("container web: ready", joined)
        self.assertIn("CrashLoopBackOff", joined)
        self.assertIn("readiness probe failed", joined)

    def test_invalid_manifest_names_the_field(self):
        with self.assertRaises(grpc.RpcError) as error:
            self.stub().RunPod(ppb.RunPodRequest(manifest="apiVersion: v1\nkind: Pod\nmetadata: { name: x }\nspec: { containers: [] }\n"),
                               timeout=10)
        self.assertEqual(error.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("manifest.spec.containers", error.exception.details())

    def test_manifest_pod_is_readopted_after_a_daemon_crash(self):
        """SIGKILL the daemon under a running manifest pod: its processes go on, a container that
        exits meanwhile is reported with its true exit code and its last line is in its log, and
        the restarted daemon supervises the pod again (StopPod, RemovePod work)."""
        stub = self.stub()
        uid = "svc-" + uuid.uuid4().hex[:8]
        self.track(uid=uid)
        manifest = """
apiVersion: v1
kind: Pod
metadata: {{ name: survivor, uid: {uid} }}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: steady
    image: busybox
    command: [sh, -c, "echo steady-up; exec sleep 3600"]
  - name: quits
    image: busybox
    command: [sh, -c, "echo quits-up; sleep 5; echo quitting-while-down; exit 3"]
""".format(uid=uid)
        pod_id = stub.RunPod(ppb.RunPodRequest(manifest=manifest), timeout=30).pod_id
        self.wait_status(stub, pod_id, lambda s: all(c.state == "Running" for c in s.containers) and len(s.containers) == 2)
        pid = None
        deadline = time.time() + 5
        while pid is None and time.time() < deadline:
            pid = find_container_pid(["sleep", "3600"], keys={uid}, daemon_pid=self.daemon.pid, base=self.base)
            time.sleep(0.1)
        self.assertIsNotNone(pid)
        started = proc_starttime(pid)
        type(self).recorded[pid] = started

        type(self).client.close()
        self.restart_daemon(down_seconds=6)  # `quits` exits (3) while no daemon runs
        stub = self.stub()
        try:
            status = self.wait_status(stub, pod_id, lambda s: any(
                c.name == "quits" and c.state == "Terminated" for c in s.containers), timeout=20)
            by_name = {c.name: c for c in status.containers}
            self.assertEqual(by_name["quits"].exit_code, 3, status)
            self.assertEqual(by_name["steady"].state, "Running", status)
            self.assertEqual(proc_starttime(pid), started, "the running container was not re-adopted as it was")
            logs = glob.glob(os.path.join(self.base, "**", "*%s*" % uid, "quits", "0.log"), recursive=True)
            self.assertEqual(len(logs), 1, "log of quits: %s" % logs)
            with open(logs[0]) as f:
                self.assertIn("quitting-while-down", f.read())
            stub.StopPod(ppb.StopPodRequest(pod_id=pod_id, grace_period_seconds=1), timeout=10)
            final = self.wait_status(stub, pod_id, lambda s: s.finished, timeout=20)
            self.assertTrue(all(c.state == "Terminated" for c in final.containers), final)
        finally:
            stub.RemovePod(ppb.RemovePodRequest(pod_id=pod_id), timeout=60)
        self.assertNotEqual(proc_starttime(pid), started, "the adopted container still runs after RemovePod")
