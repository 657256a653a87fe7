"""podshim.v1.PodService: a whole manifest under the daemon's supervision — probes, restarts,
phases and conditions — on the same socket as the CRI, through an independent client."""

import threading
import time
import uuid

import grpc

from crihelpers import CRITestCase
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
