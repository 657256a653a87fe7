"""Exec through the CRI streaming server: the URL Exec returns, upgraded to SPDY/3.1 with the
v4.channel.k8s.io protocol, driven by a SPDY client of the suite's own (spdyclient.py)."""

import hashlib
import os
import socket
import threading
import time

import grpc

import crihelpers
from crihelpers import CRITestCase, pb
import spdyclient
import wsclient


class StreamingExecTest(CRITestCase):

    def setUp(self):
        self.pod_id, cfg, self.cid = self.run_pod_with_sleeper(self.client, "stream-%d" % (abs(hash(self._testMethodName)) % 100000))

    def exec_url(self, cmd, stdin=False, stdout=True, stderr=True, tty=False, cid=None):
        return self.client.rt.Exec(pb.ExecRequest(container_id=cid or self.cid, cmd=cmd, stdin=stdin, stdout=stdout,
                                                  stderr=stderr, tty=tty), timeout=10).url

    def test_stdin_through_cat_and_back(self):
        data = os.urandom(32 << 20)
        url = self.exec_url(["cat"], stdin=True)
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/exec/[A-Za-z0-9_-]{22}$")
        t0 = time.time()
        out, err, status = spdyclient.run_exec(url, stdin=data)
        took = time.time() - t0
        self.assertEqual(len(out), len(data))
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(err, b"")
        self.assertEqual(status, {"metadata": {}, "status": "Success"})
        print("    [streaming] 32 MiB through exec stdin and back in %.2f s" % took)

    def test_exit_codes_and_stderr(self):
        for code, command in ((0, "echo out; echo err >&2"), (1, "echo out; echo err >&2; exit 1"),
                              (137, "echo out; kill -9 $$")):
            with self.subTest(code=code):
                out, err, status = spdyclient.run_exec(self.exec_url(["sh", "-c", command]))
                self.assertEqual(out, b"out\n")
                if code == 137:
                    self.assertEqual(err, b"")
                else:
                    self.assertEqual(err, b"err\n")
                if code == 0:
                    self.assertEqual(status["status"], "Success")
                else:
                    self.assertEqual(status["status"], "Failure")
                    self.assertEqual(status["reason"], "NonZeroExitCode")
                    self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": str(code)}])

    def test_a_command_that_cannot_run_ends_the_session_with_its_exit_code(self):
        # As runc reports it: not there 127, not executable 126; the reason on stderr and in the
        # status. Every stream ends (client-go reads the status only after stdout and stderr), fast.
        for command, code, reason in ((["/nonexistent"], 127, "execve /nonexistent: ENOENT"),
                                      (["no-such-program", "arg"], 127, "execve no-such-program: ENOENT"),
                                      (["/etc/passwd"], 126, "execve /etc/passwd: EACCES"),
                                      (["/tmp"], 126, "execve /tmp: EACCES")):
            for stdin in (None, b"ignored\n"):
                with self.subTest(command=command, stdin=stdin is not None):
                    t0 = time.time()
                    out, err, status = spdyclient.run_exec(self.exec_url(command, stdin=stdin is not None),
                                                           stdin=stdin, timeout=10)
                    self.assertLess(time.time() - t0, 5)
                    self.assertEqual(out, b"")
                    self.assertEqual(err, b"exec failed: %s\n" % reason.encode())
                    self.assertEqual(status["status"], "Failure")
                    self.assertEqual(status["reason"], "NonZeroExitCode")
                    self.assertIn(reason, status["message"])
                    self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": str(code)}])
        # With a terminal the reason comes on it; with stdout alone, in the status only.
        out, err, status = spdyclient.run_exec(self.exec_url(["/nonexistent"], stderr=False), stderr=False, timeout=10)
        self.assertEqual((out, err), (b"", b""))
        self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": "127"}])
        url = self.exec_url(["/nonexistent"], stdin=True, stderr=False, tty=True)
        sock, _ = spdyclient.upgrade(url, timeout=10)
        s = spdyclient.Session(sock)
        ids = {kind: s.syn_stream({"streamtype": kind}) for kind in ("error", "stdin", "stdout", "resize")}
        out, status, open_streams = bytearray(), bytearray(), {ids["stdout"], ids["error"]}
        while open_streams:
            frame = s.read_frame()
            self.assertIsNotNone(frame, "closed before every stream ended")
            kind, sid, flags, payload = frame
            if kind == "data":
                (out if sid == ids["stdout"] else status).extend(payload)
                if flags & spdyclient.FIN:
                    open_streams.discard(sid)
        sock.close()
        self.assertEqual(bytes(out), b"exec failed: execve /nonexistent: ENOENT\r\n")
        self.assertEqual(spdyclient.json.loads(bytes(status).decode())["details"]["causes"],
                         [{"reason": "ExitCode", "message": "127"}])
        # The container runs on, and execs in it still work; ExecSync of the same still says why.
        self.assertEqual(self.container_status(self.client, self.cid).status.state, pb.CONTAINER_RUNNING)
        out, _, status = spdyclient.run_exec(self.exec_url(["echo", "still-running"]), timeout=10)
        self.assertEqual((out, status["status"]), (b"still-running\n", "Success"))
        with self.assertRaises(grpc.RpcError) as refused:
            self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=self.cid, cmd=["/nonexistent"], timeout=5), timeout=15)
        self.assertIn("execve /nonexistent: ENOENT", refused.exception.details())

    def test_failed_starts_leak_nothing(self):
        def fds():
            return len(os.listdir("/proc/%d/fd" % self.daemon.pid))

        def threads():
            return len(os.listdir("/proc/%d/task" % self.daemon.pid))

        def children():
            return sorted(p for p in crihelpers.descendants(self.daemon.pid))

        def thread_names():
            names = []
            for tid in os.listdir("/proc/%d/task" % self.daemon.pid):
                try:
                    with open("/proc/%d/task/%s/comm" % (self.daemon.pid, tid)) as f:
                        names.append(f.read().strip())
                except OSError:
                    pass
            return sorted(names)

        def fd_targets():
            targets = []
            for fd in os.listdir("/proc/%d/fd" % self.daemon.pid):
                try:
                    targets.append(os.readlink("/proc/%d/fd/%s" % (self.daemon.pid, fd)))
                except OSError:
                    pass
            return sorted(targets)

        # Warm up (the first session starts the event loops' threads), then measure.
        for _ in range(3):
            spdyclient.run_exec(self.exec_url(["/nonexistent"]), timeout=10)
        # The class's earlier tests may still be winding down their sessions (log files, pidfds,
        # Dispatch workers): the baseline is taken once the counts have held still for a second.
        before, deadline = None, time.time() + 20
        while time.time() < deadline:
            current = (fds(), threads(), children())
            if current == before:
                break
            before = current
            time.sleep(1)
        names_before, fds_before = thread_names(), fd_targets()
        for i in range(40):
            command = ["/nonexistent"] if i % 2 else ["/etc/passwd"]
            if i % 4 < 2:
                _, _, status = spdyclient.run_exec(self.exec_url(command, stdin=True), stdin=b"x", timeout=10)
            else:
                status = wsclient.run_exec(self.exec_url(command, stdin=True), timeout=10)[2]
            self.assertEqual(status["reason"], "NonZeroExitCode")
        deadline = time.time() + 10
        while time.time() < deadline:
            after = (fds(), threads(), children())
            if after == before:
                break
            time.sleep(0.2)
        self.assertEqual(after, before, "daemon fds, threads, child processes; threads before %s, now %s; fds before %s, now %s" % (
            names_before, thread_names(), fds_before, fd_targets()))

    def test_only_the_streams_asked_for(self):
        out, err, status = spdyclient.run_exec(self.exec_url(["sh", "-c", "echo out; echo err >&2"], stderr=False),
                                               stderr=False)
        self.assertEqual((out, err, status["status"]), (b"out\n", b"", "Success"))

    def test_tokens_are_single_use_and_checked(self):
        url = self.exec_url(["true"])
        spdyclient.run_exec(url)
        for bad in (url, url[:-3] + "AAA", url.rsplit("/", 1)[0] + "/nosuchtoken"):
            with self.assertRaises(spdyclient.HTTPError) as refused:
                spdyclient.upgrade(bad)
            self.assertEqual(refused.exception.status, 404, refused.exception.body)
        with self.assertRaises(spdyclient.HTTPError) as refused:
            spdyclient.upgrade(self.exec_url(["true"]), upgrade_header=None)
        self.assertEqual(refused.exception.status, 400)
        with self.assertRaises(spdyclient.HTTPError) as refused:
            spdyclient.upgrade(self.exec_url(["true"]), versions=("v9.channel.k8s.io",))
        self.assertEqual(refused.exception.status, 403)
        self.assertEqual(refused.exception.headers["x-accepted-stream-protocol-versions"], ["v4.channel.k8s.io"])
        # Malformed HTTP: the connection is closed, the server goes on.
        parsed = spdyclient.urllib.parse.urlparse(url)
        raw = socket.create_connection((parsed.hostname, parsed.port), timeout=5)
        raw.sendall(b"\x00\x01garbage\r\n\r\n")
        raw.settimeout(5)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
        raw.close()
        # An oversized frame (16 MiB announced) ends that session with GOAWAY, nothing else.
        sock, _ = spdyclient.upgrade(self.exec_url(["sleep", "30"]))
        sock.sendall(bytes([0, 0, 0, 1, 0, 0xFF, 0xFF, 0xFF]))
        s = spdyclient.Session(sock)
        frames = []
        while True:
            frame = s.read_frame()
            if frame is None:
                break
            frames.append(frame)
        self.assertEqual([f[0] for f in frames], [7], "expected only a GOAWAY")
        sock.close()
        out, _, status = spdyclient.run_exec(self.exec_url(["echo", "still-serving"]))
        self.assertEqual((out, status["status"]), (b"still-serving\n", "Success"))

    def test_bad_requests_are_refused_by_the_rpc(self):
        rt = self.client.rt
        cases = [
            (pb.ExecRequest(container_id=self.cid, cmd=[], stdout=True), grpc.StatusCode.INVALID_ARGUMENT, "cmd"),
            (pb.ExecRequest(container_id=self.cid, cmd=["true"]), grpc.StatusCode.INVALID_ARGUMENT, "stdin"),
            (pb.ExecRequest(container_id=self.cid, cmd=["sh"], tty=True, stderr=True), grpc.StatusCode.INVALID_ARGUMENT, "stderr"),
            (pb.ExecRequest(container_id="nosuch", cmd=["true"], stdout=True), grpc.StatusCode.NOT_FOUND, "nosuch"),
        ]
        for request, code, word in cases:
            with self.subTest(word=word):
                with self.assertRaises(grpc.RpcError) as error:
                    rt.Exec(request, timeout=10)
                self.assertEqual(error.exception.code(), code)
                self.assertIn(word, error.exception.details())

    def test_a_client_that_leaves_takes_its_process_along(self):
        url = self.exec_url(["sh", "-c", "echo started; exec sleep 4242"], stdin=True)
        sock, _ = spdyclient.upgrade(url)
        s = spdyclient.Session(sock)
        for kind in ("error", "stdin", "stdout", "stderr"):
            s.syn_stream({"streamtype": kind})
        seen = b""
        while b"started" not in seen:
            frame = s.read_frame()
            self.assertIsNotNone(frame)
            if frame[0] == "data":
                seen += frame[3]
        sock.close()  # no GOAWAY, no FIN: the client vanished
        deadline = time.time() + 10
        while True:
            r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=self.cid, cmd=["ps", "-o", "args"], timeout=5), timeout=15)
            if b"sleep 4242" not in r.stdout or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertNotIn(b"sleep 4242", r.stdout)

    def test_ping_is_answered_and_many_sessions_run_at_once(self):
        results = {}

        def one(i):
            try:
                sessions = []
                out, _, status = spdyclient.run_exec(self.exec_url(["sh", "-c", "sleep 0.5; echo %d" % i]),
                                                     on_open=lambda s, ids: (s.ping(1), sessions.append(s)))
                results[i] = (out, status["status"], sessions[0].pongs)
            except Exception as error:  # reported below
                results[i] = error

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results, {i: (b"%d\n" % i, "Success", [1]) for i in range(50)})
        print("    [streaming] 50 concurrent exec sessions in %.2f s" % (time.time() - t0))

    def test_tty_with_resize(self):
        # The first read waits for the client's first size (it may arrive after the process started).
        url = self.exec_url(["sh", "-c", "read go; stty size; read line; stty size; echo got $line; exit 4"],
                            stdin=True, stderr=False, tty=True)
        sock, _ = spdyclient.upgrade(url)
        s = spdyclient.Session(sock)
        ids = {kind: s.syn_stream({"streamtype": kind}) for kind in ("error", "stdin", "stdout", "resize")}
        s.data(ids["resize"], b'{"Width":97,"Height":31}\n')
        time.sleep(0.2)
        s.data(ids["stdin"], b"go\r")
        out = bytearray()
        status = bytearray()

        def read_until(predicate):
            while not predicate():
                frame = s.read_frame()
                self.assertIsNotNone(frame, "closed early; output %r" % bytes(out))
                kind, sid, flags, payload = frame
                if kind == "data" and sid == ids["stdout"]:
                    out.extend(payload)
                elif kind == "data" and sid == ids["error"]:
                    status.extend(payload)
                    if flags & spdyclient.FIN:
                        return

        read_until(lambda: b"31 97" in out)
        s.data(ids["resize"], b'{"Width":120,"Height":40}\n{"Width":0,"Height":0}\n')
        time.sleep(0.3)
        s.data(ids["stdin"], b"hello\r")
        read_until(lambda: False)
        sock.close()
        text = out.decode(errors="replace")
        self.assertIn("31 97\r\n", text)
        self.assertIn("40 120\r\n", text)  # a zero size is ignored
        self.assertIn("got hello\r\n", text)
        status = spdyclient.json.loads(bytes(status).decode())
        self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": "4"}])


class StreamingPortForwardTest(CRITestCase):

    def test_forward_two_connections_and_a_refused_port(self):
        pod_id, cfg = self.run_pod(self.client, "forward")
        cid = self.create_container(self.client, pod_id, cfg, "web", [
            "sh", "-c", "mkdir -p /w && head -c 300000 /dev/urandom > /w/blob && echo forwarded > /w/index.html "
                        "&& exec httpd -f -p 8080 -h /w"])
        self.start_container(self.client, cid)
        url = self.client.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id), timeout=10).url
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/portforward/[A-Za-z0-9_-]{22}$")
        with self.assertRaises(spdyclient.HTTPError) as refused:
            spdyclient.upgrade(self.client.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id), timeout=10).url)
        self.assertEqual(refused.exception.status, 403)  # exec's protocols are not port forwarding's
        sock, version = spdyclient.upgrade(url, versions=("portforward.k8s.io",))
        self.assertEqual(version, "portforward.k8s.io")
        s = spdyclient.Session(sock)
        pairs = {}
        for request_id, port, path in (("0", "8080", "/index.html"), ("1", "8080", "/blob"), ("2", "9", "/")):
            error = s.syn_stream({"streamtype": "error", "port": port, "requestid": request_id})
            data = s.syn_stream({"streamtype": "data", "port": port, "requestid": request_id})
            s.data(error, b"", fin=True)  # as client-go does: the error stream is read only
            pairs[request_id] = {"error": error, "data": data, "out": bytearray(), "err": bytearray(), "done": False,
                                 "request": ("GET %s HTTP/1.0\r\n\r\n" % path).encode()}
        deadline = time.time() + 30
        started = set()
        while not all(p["done"] for p in pairs.values()) and time.time() < deadline:
            frame = s.read_frame()
            self.assertIsNotNone(frame)
            kind, sid, flags, payload = frame
            for request_id, p in pairs.items():
                if kind == 2 and sid == p["data"] and request_id not in started:
                    started.add(request_id)
                    s.data(p["data"], p["request"], fin=True)
                if kind == "data" and sid == p["data"]:
                    p["out"].extend(payload)
                    if flags & spdyclient.FIN:
                        p["done"] = True
                if kind == "data" and sid == p["error"]:
                    p["err"].extend(payload)
                if kind == 3 and sid == p["data"]:  # RST: the connection failed
                    p["done"] = True
        sock.close()
        self.assertTrue(bytes(pairs["0"]["out"]).endswith(b"\r\n\r\nforwarded\n"), bytes(pairs["0"]["out"])[:200])
        self.assertEqual(bytes(pairs["0"]["err"]), b"")
        body = bytes(pairs["1"]["out"]).split(b"\r\n\r\n", 1)[1]
        self.assertEqual(len(body), 300000)
        self.assertIn(b"connect 127.0.0.1:9", bytes(pairs["2"]["err"]))
        self.assertEqual(bytes(pairs["2"]["out"]), b"")


class StreamingIdleTimeoutTest(CRITestCase):
    daemon_kwargs = {"extra_args": ["--stream-idle-timeout", "2"]}

    def test_an_idle_session_is_closed_and_its_process_killed(self):
        pod_id, cfg, cid = self.run_pod_with_sleeper(self.client, "stream-idle")
        url = self.client.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sleep", "4343"], stdout=True), timeout=10).url
        sock, _ = spdyclient.upgrade(url)
        s = spdyclient.Session(sock)
        for kind in ("error", "stdout"):
            s.syn_stream({"streamtype": kind})
        t0 = time.time()
        while s.read_frame() is not None:
            pass
        closed_after = time.time() - t0
        sock.close()
        self.assertGreater(closed_after, 1.5)
        self.assertLess(closed_after, 10)
        deadline = time.time() + 10
        while True:
            r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["ps", "-o", "args"], timeout=5), timeout=15)
            if b"sleep 4343" not in r.stdout or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertNotIn(b"sleep 4343", r.stdout)


class StreamingWebSocketExecTest(CRITestCase):
    """Exec over WebSocket (the channel protocols), with a WebSocket client of the suite's own."""

    def test_websocket_exec(self):
        import wsclient
        pod_id, cfg, cid = self.run_pod_with_sleeper(self.client, "stream-ws")

        def url(cmd, **kw):
            kw.setdefault("stdout", True)
            kw.setdefault("stderr", True)
            return self.client.rt.Exec(pb.ExecRequest(container_id=cid, cmd=cmd, **kw), timeout=10).url

        data = os.urandom(8 << 20)
        for protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
            with self.subTest(protocol=protocol):
                # v4 cannot close stdin (v5's [255, 0] can): without stdin there.
                v5 = protocol.startswith("v5")
                command = "cat; echo err >&2; exit 6" if v5 else "echo err >&2; exit 6"
                out, err, status, code = wsclient.run_exec(url(["sh", "-c", command], stdin=v5),
                                                           stdin=data if v5 else None, protocols=(protocol,))
                self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(data if v5 else b"").hexdigest())
                self.assertEqual(err, b"err\n")
                self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": "6"}])
                self.assertEqual(code, 1000)
        out, _, status, _ = wsclient.run_exec(url(["echo", "fine"]))
        self.assertEqual((out, status["status"]), (b"fine\n", "Success"))
        # A command that cannot run: its 127/126 and the reason, then the close, at once.
        for protocol in ("v5.channel.k8s.io", "v4.channel.k8s.io"):
            for command, code, reason in ((["/nonexistent"], 127, "execve /nonexistent: ENOENT"),
                                          (["/etc/passwd"], 126, "execve /etc/passwd: EACCES")):
                with self.subTest(protocol=protocol, command=command):
                    t0 = time.time()
                    out, err, status, close = wsclient.run_exec(url(command, stdin=True), protocols=(protocol,), timeout=10)
                    self.assertLess(time.time() - t0, 5)
                    self.assertEqual((out, err), (b"", b"exec failed: %s\n" % reason.encode()))
                    self.assertEqual((status["status"], status["reason"]), ("Failure", "NonZeroExitCode"))
                    self.assertEqual(status["details"]["causes"], [{"reason": "ExitCode", "message": str(code)}])
                    self.assertEqual(close, 1000)
        self.assertEqual(self.container_status(self.client, cid).status.state, pb.CONTAINER_RUNNING)
        with self.assertRaises(spdyclient.HTTPError) as refused:
            wsclient.connect(url(["true"]), protocols=("v9.channel.k8s.io",))
        self.assertEqual(refused.exception.status, 403)
        with self.assertRaises(spdyclient.HTTPError) as refused:
            wsclient.connect(url(["true"]), key="")
        self.assertEqual(refused.exception.status, 400)
