"""Hostile input on the socket: malformed protobuf, wrong message types, huge messages, idle and
garbage connections. The daemon must answer with a status (or drop that one connection) and keep
serving everyone else."""

import os
import socket
import threading
import time

import grpc

from crihelpers import Client, CRITestCase, code_of, container_config, log, pb, pod_config

RUN = "/runtime.v1.RuntimeService/RunPodSandbox"
CREATE = "/runtime.v1.RuntimeService/CreateContainer"
STATUS = "/runtime.v1.RuntimeService/ContainerStatus"
PULL = "/runtime.v1.ImageService/PullImage"


class VersionWatcher:
    """Keeps calling Version on its own channel; records failures."""

    def __init__(self, sock):
        self.client = Client(sock)
        self.failures = []
        self.count = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.time()
            try:
                self.client.rt.Version(pb.VersionRequest(version="v1"), timeout=3)
                self.count += 1
            except grpc.RpcError as e:
                self.failures.append((time.strftime("%H:%M:%S"), e.code(), e.details(), round(time.time() - t0, 2)))
            self.stopping.wait(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        self.client.close()


class BadInputTest(CRITestCase):

    def setUp(self):
        self.watcher = VersionWatcher(self.daemon.socket)
        self.addCleanup(self.watcher.stop)
        self.raw = self.new_client(self.daemon.socket, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])

    def tearDown(self):
        self.watcher.stop()
        try:
            self.assertTrue(self.daemon.alive(), "daemon died:\n%s" % self.daemon.stderr_tail())
            if getattr(self, "watcher_lenient", False):
                if self.watcher.failures:
                    log("Version on a healthy channel failed %d times meanwhile, e.g. %s"
                        % (len(self.watcher.failures), self.watcher.failures[:2]))
            else:
                self.assertEqual(self.watcher.failures, [], "Version failed on a healthy channel meanwhile")
            self.assertGreater(self.watcher.count, 0)
            v = self.client.rt.Version(pb.VersionRequest(), timeout=5)
            self.assertEqual(v.runtime_name, "podshim")
        finally:
            super().tearDown()

    def call_raw(self, method, payload, timeout=15):
        fn = self.raw.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return code_of(fn, payload, timeout=timeout)

    def test_malformed_protobuf(self):
        bads = [
            b"\xff\xff\xff\xff",                    # invalid tag, truncated varint
            b"\x0a\x10abc",                         # length-delimited field longer than the message
            b"\x0a\xff\xff\xff\xff\x0f",            # absurd length
            b"\x08" + b"\xff" * 11,                 # varint longer than 10 bytes
            b"\x0b\x0c",                            # start/end group (deprecated wire types)
            b"\x07",                                # wire type 7 does not exist
        ]
        for method in (RUN, CREATE, STATUS, PULL):
            for bad in bads:
                with self.subTest(method=method, payload=bad[:8]):
                    code, details, _ = self.call_raw(method, bad)
                    self.assertIn(code, (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL),
                                  "%s %r: %s %r" % (method, bad[:8], code, details))
            for _ in range(5):
                junk = os.urandom(512)
                with self.subTest(method=method, payload="random"):
                    # Random bytes may even parse; what matters is a proper status.
                    code, details, _ = self.call_raw(method, junk)
                    self.assertNotIn(code, (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN),
                                     "%s random: %s %r" % (method, code, details))

    def test_wrong_message_type(self):
        wrong = [
            (RUN, pb.ContainerStatusRequest(container_id="x" * 64, verbose=True).SerializeToString()),
            (RUN, pb.VersionResponse(version="1", runtime_name="evil").SerializeToString()),
            (CREATE, pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(hostname="h")).SerializeToString()),
            (STATUS, pb.ExecSyncRequest(container_id="", cmd=["a"] * 100).SerializeToString()),
            ("/runtime.v1.RuntimeService/ExecSync",
             pb.PodSandboxConfig(hostname="h" * 1000, labels={"a": "b"}).SerializeToString()),
        ]
        for method, payload in wrong:
            with self.subTest(method=method):
                code, details, resp = self.call_raw(method, payload)
                self.assertNotIn(code, (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
                                 "%s: %s %r" % (method, code, details))
        # Nothing was created by any of that.
        self.assertEqual(list(self.client.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=5).items), [])

    def test_huge_message(self):
        payload = b"\x12\x80\x80\x80\x20" + b"a" * (64 << 20)  # field 2, 64 MiB
        t0 = time.time()
        code, details, _ = self.call_raw(RUN, payload, timeout=60)
        self.assertIn(code, (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE,
                             grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL),
                      "64 MiB message: %s %r" % (code, details))
        self.assertLess(time.time() - t0, 60)

    def test_many_large_messages(self):
        # Eight 4 MiB requests at once (legal sizes, useless content): each gets a status and the
        # daemon survives. Slow answers on the healthy channel meanwhile are reported, not failed
        # (head-of-line blocking while big messages are decoded).
        self.watcher_lenient = True
        mid = b"\x12\x80\x80\x80\x02" + b"b" * (4 << 20)  # field 2 (runtime_handler), 4 MiB
        errs = []

        def one():
            errs.append(self.call_raw(RUN, mid, timeout=60)[0])
        t0 = time.time()
        ts = [threading.Thread(target=one) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        log("8 x 4 MiB: %s in %.1fs" % (sorted(set(e.name for e in errs)), time.time() - t0))
        self.assertEqual(len(errs), 8)
        self.assertTrue(all(e not in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN) for e in errs), errs)

    def test_idle_and_garbage_connections(self):
        socks = []
        try:
            def conn():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(self.daemon.socket)
                socks.append(s)
                return s
            for _ in range(20):
                conn()                                  # connected, silent, held open
            conn().sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn().sendall(os.urandom(4096))
            conn().sendall(b"\x00" * 65536)
            conn().sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(2048))   # preface, then junk frames
            # A valid preface followed by a frame header announcing 16 MiB, then silence.
            conn().sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                           + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01")
            s = conn()                                  # slow preface, a byte at a time
            for ch in b"PRI * HTT":
                s.send(bytes([ch]))
                time.sleep(0.05)
            # Half-closed: preface then shutdown(WR).
            s = conn()
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            # Connect-and-reset churn.
            for _ in range(50):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.daemon.socket)
                s.close()
            # While all of that is held open, a new channel still works, repeatedly.
            for _ in range(3):
                c = Client(self.daemon.socket)
                try:
                    v = c.rt.Version(pb.VersionRequest(), timeout=5)
                    self.assertEqual(v.runtime_name, "podshim")
                finally:
                    c.close()
                time.sleep(0.5)
            # And real work works.
            pod_id, cfg, cid = self.run_pod_with_sleeper(self.client, "undergarbage")
            r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["echo", "ok"], timeout=5),
                                        timeout=15)
            self.assertEqual(r.stdout, b"ok\n")
        finally:
            for s in socks:
                s.close()
        time.sleep(0.5)
        self.assertTrue(self.daemon.alive())

    def test_many_concurrent_streams_cancelled(self):
        # Open many GetContainerEvents streams and cancel them abruptly; then close the channel.
        c = Client(self.daemon.socket)
        calls = [c.rt.GetContainerEvents(pb.GetEventsRequest()) for _ in range(50)]
        time.sleep(0.5)
        for call in calls:
            call.cancel()
        c.close()
        c2 = Client(self.daemon.socket)
        calls = [c2.rt.GetContainerEvents(pb.GetEventsRequest()) for _ in range(20)]
        time.sleep(0.5)
        c2.close()                                     # close with streams still open
        time.sleep(0.5)
        self.assertTrue(self.daemon.alive())



class HostPathImageTest(CRITestCase):
    """Over the CRI an image is a reference or id in the store: a host path is refused at once,
    never run as a root filesystem, hashed or imported."""

    def test_a_host_path_is_not_an_image(self):
        pod_id, cfg = self.run_pod(self.client, "hostpath-image")
        for image in ("/", "/etc", "oci:/tmp", "./busybox"):
            ccfg = container_config("c", ["cat", "/etc/shadow"])
            ccfg.image.image = image
            begin = time.monotonic()
            code, details, _ = code_of(self.client.rt.CreateContainer, pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg), timeout=10)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (image, details))
            self.assertIn("config.image.image", details)
            for call, request in ((self.client.img.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image=image))),
                                  (self.client.img.RemoveImage, pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))):
                code, details, _ = code_of(call, request, timeout=10)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (image, details))
                self.assertIn("image.image", details)
            self.assertLess(time.monotonic() - begin, 5, "refused at once, nothing hashed")
        self.assertEqual(list(self.client.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers), [])
        images = self.client.img.ListImages(pb.ListImagesRequest(), timeout=10).images
        self.assertFalse(any(t.startswith("/") or "etc" in t for i in images for t in i.repo_tags), images)


class LogPathTest(CRITestCase):
    """Log files stay beneath the sandbox's log directory; a log directory with `..` is refused."""

    def test_log_paths_are_confined(self):
        escape = os.path.join(self.base, "escape-target")
        code, details, _ = code_of(self.client.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=pod_config(
            "logdir-escape", log_directory=os.path.join(self.base, "podlogs", "x", "..", "..", "escape-target"))),
            timeout=15)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("config.log_directory", details)
        self.assertFalse(os.path.exists(escape), "the log directory was created outside")
        pod_id, cfg = self.run_pod(self.client, "logpath")
        for log_path, why in ((os.path.join(self.base, "abs.log"), "absolute"), ("../escape.log", ".."),
                              ("a/../../escape.log", ".."), ("dir/", "a directory")):
            code, details, _ = code_of(self.client.rt.CreateContainer, pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=container_config("c", ["true"], log_path=log_path),
                sandbox_config=cfg), timeout=15)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (log_path, why, details))
            self.assertIn("config.log_path", details)
        self.assertFalse(os.path.exists(os.path.join(self.base, "abs.log")))
        self.assertFalse(os.path.exists(os.path.join(self.base, "podlogs", "escape.log")))
        # A relative path with a subdirectory (what a kubelet sends) is fine.
        cid = self.create_container(self.client, pod_id, cfg, "ok", ["echo", "hi"], log_path="ok/0.log")
        self.start_container(self.client, cid)
        self.wait_container_state(self.client, cid, pb.CONTAINER_EXITED)
        self.assertTrue(os.path.exists(os.path.join(cfg.log_directory, "ok", "0.log")))


if __name__ == "__main__":
    import unittest
    unittest.main()
