"""The gRPC server under load on one connection: more RPCs than the advertised stream limit queue
in the client instead of failing the connection; thousands of open streams cost bounded memory and
give it back; a request over the size limit is refused without hurting anyone else."""

import time

import grpc

from crihelpers import Client, CRITestCase, code_of, pb


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class LoadTest(CRITestCase):

    def test_many_concurrent_rpcs_on_one_connection_all_succeed(self):
        c = Client(self.daemon.socket)
        try:
            futures = [c.rt.ListContainers.future(pb.ListContainersRequest(), timeout=60) for _ in range(600)]
            futures += [c.rt.Version.future(pb.VersionRequest(version="v1"), timeout=60) for _ in range(600)]
            failures = []
            for f in futures:
                try:
                    f.result()
                except grpc.RpcError as error:
                    failures.append((error.code(), error.details()))
            self.assertEqual(failures[:5], [], "%d of %d RPCs failed" % (len(failures), len(futures)))
        finally:
            c.close()

    def test_thousands_of_open_streams_cost_bounded_memory(self):
        before = rss_kib(self.daemon.pid)
        c = Client(self.daemon.socket)
        calls = [c.rt.GetContainerEvents(pb.GetEventsRequest()) for _ in range(3000)]
        time.sleep(2)
        during = rss_kib(self.daemon.pid)
        for call in calls:
            call.cancel()
        c.close()
        time.sleep(2)
        # Everyone else is still served.
        self.assertEqual(self.client.rt.Version(pb.VersionRequest(version="v1"), timeout=10).runtime_name, "podshim")
        after = rss_kib(self.daemon.pid)
        print("    [load] RSS before %d KiB, with 3000 streams asked for %d KiB, after %d KiB" % (before, during, after))
        self.assertLess(during - before, 64 << 10, "3000 streams on one connection cost more than 64 MiB")

    def test_a_request_over_the_limit_is_refused_and_others_go_on(self):
        raw = Client(self.daemon.socket, options=[("grpc.max_send_message_length", -1)])
        try:
            request = pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(hostname="x" * (3 << 20)))
            code, details, _ = code_of(raw.rt.RunPodSandbox, request, timeout=30)
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
            self.assertIn("over the limit of 2097152 bytes", details)
            # Over the transport's own cap (4 MiB) the stream is reset before the message is
            # buffered whole: grpcio says CANCELLED. Refused either way, nothing else hurt.
            request = pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(hostname="x" * (5 << 20)))
            code, details, _ = code_of(raw.rt.RunPodSandbox, request, timeout=30)
            self.assertIn(code, (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED), details)
        finally:
            raw.close()
        self.assertEqual(self.client.rt.Version(pb.VersionRequest(version="v1"), timeout=10).runtime_name, "podshim")
