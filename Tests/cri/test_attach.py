"""Attach through the CRI streaming server: containers created with stdin, stdin_once and tty, a
session of the suite's own SPDY client (spdyclient.py) attached, detached and attached again, also
across a SIGKILL and restart of the daemon (the pause process keeps the stdin and the terminal)."""

import json
import os
import queue
import threading
import time

import grpc

from crihelpers import CRITestCase, container_config, pb
import spdyclient


class Attached:
    """One attach session: streams opened as client-go's v4 attach opens them, output collected by
    a reader thread."""

    def __init__(self, url, stdin=True, stdout=True, stderr=True, tty=False):
        self.sock, version = spdyclient.upgrade(url)
        assert version == "v4.channel.k8s.io", version
        self.s = spdyclient.Session(self.sock)
        self.lock = threading.Lock()
        self.ids = {}
        self.data = {}
        self.finished = set()
        self.replies = queue.Queue()
        kinds = ["error"] + (["stdin"] if stdin else []) + (["stdout"] if stdout else [])
        kinds += ["resize"] if tty else (["stderr"] if stderr else [])
        self.reader = threading.Thread(target=self._read, daemon=True)
        for kind in kinds:
            self.ids[kind] = self.s.syn_stream({"streamtype": kind})
            self.data[kind] = bytearray()
            if not self.reader.is_alive():
                self.reader.start()
            self.replies.get(timeout=10)
        self.closed = threading.Event()

    def _read(self):
        names = {}
        try:
            while True:
                frame = self.s.read_frame()
                if frame is None:
                    break
                kind, sid, flags, payload = frame
                if kind == 2:
                    self.replies.put(sid)
                elif kind == "data":
                    name = next((k for k, v in self.ids.items() if v == sid), None)
                    with self.lock:
                        if name:
                            self.data[name].extend(payload)
                        if flags & spdyclient.FIN and name:
                            self.finished.add(name)
                elif kind == 6 and sid % 2 == 0:
                    self.s.ping(sid)
        except OSError:
            pass
        finally:
            self.closed_at_eof = True
            getattr(self, "closed", threading.Event()).set()

    def send(self, text, fin=False):
        self.s.data(self.ids["stdin"], text.encode() if isinstance(text, str) else text, fin)

    def resize(self, width, height):
        self.s.data(self.ids["resize"], json.dumps({"Width": width, "Height": height}).encode())

    def wait_for(self, stream, needle, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if needle.encode() in self.data[stream]:
                    return bytes(self.data[stream])
            time.sleep(0.02)
        raise AssertionError("%r not in %s: %r" % (needle, stream, bytes(self.data[stream])))

    def wait_finished(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if "error" in self.finished:
                    return json.loads(self.data["error"].decode()) if self.data["error"] else None
            time.sleep(0.02)
        raise AssertionError("the session did not end: %r" % self.data)

    def detach(self):
        try:
            self.s.goaway()
        except OSError:
            pass
        self.sock.close()


class AttachTest(CRITestCase):

    def setUp(self):
        self.pod_id, self.pod_cfg = self.run_pod(self.client, "attach-%d" % (abs(hash(self._testMethodName)) % 100000))

    def interactive(self, name, command, stdin=True, stdin_once=False, tty=False):
        cfg = container_config(name, command)
        cfg.stdin, cfg.stdin_once, cfg.tty = stdin, stdin_once, tty
        cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.pod_id, config=cfg, sandbox_config=self.pod_cfg), timeout=30).container_id
        self.start_container(self.client, cid)
        return cid

    def attach(self, cid, stdin=True, stdout=True, stderr=True, tty=False):
        url = self.client.rt.Attach(pb.AttachRequest(container_id=cid, stdin=stdin, stdout=stdout,
                                                     stderr=stderr and not tty, tty=tty), timeout=10).url
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/attach/[A-Za-z0-9_-]{22}$")
        return Attached(url, stdin=stdin, stdout=stdout, stderr=stderr and not tty, tty=tty)

    def pid_of(self, cid):
        pid = json.loads(self.container_status(self.client, cid, verbose=True).info["info"])["pid"]
        self.assertGreater(pid, 0)
        return pid

    def log_of(self, cid):
        with open(self.container_status(self.client, cid).status.log_path) as log:
            return log.read()

    def test_attach_detach_and_attach_again(self):
        cid = self.interactive("reader", ["sh", "-c", "while read line; do echo got:$line; echo err:$line >&2; done"])
        first = self.attach(cid)
        first.send("one\n")
        first.wait_for("stdout", "got:one")
        first.wait_for("stderr", "err:one")
        first.detach()
        pid = self.pid_of(cid)
        second = self.attach(cid)
        second.send("two\n")
        out = second.wait_for("stdout", "got:two")
        self.assertNotIn(b"got:one", out)  # a session gets what is printed from its start on
        second.detach()
        self.assertEqual(self.container_status(self.client, cid).status.state, pb.CONTAINER_RUNNING)
        self.assertEqual(self.pid_of(cid), pid)
        log = self.log_of(cid)
        self.assertIn("stdout F got:one", log)
        self.assertIn("stderr F err:two", log)

    def test_session_ends_with_success_when_the_container_exits(self):
        cid = self.interactive("quitter", ["sh", "-c", "read line; echo bye:$line; exit 3"])
        session = self.attach(cid)
        session.send("now\n")
        session.wait_for("stdout", "bye:now")
        status = session.wait_finished()
        self.assertEqual(status, {"metadata": {}, "status": "Success"})
        session.detach()
        st = self.wait_container_state(self.client, cid, pb.CONTAINER_EXITED)
        self.assertEqual(st.exit_code, 3)
        with self.assertRaises(grpc.RpcError) as refused:
            self.client.rt.Attach(pb.AttachRequest(container_id=cid, stdout=True), timeout=10)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_stdin_once_closes_after_the_first_session(self):
        cid = self.interactive("once", ["sh", "-c", "cat; echo stdin-closed; sleep 3600"], stdin_once=True)
        session = self.attach(cid)
        session.send("payload\n", fin=True)
        out = session.wait_for("stdout", "stdin-closed")
        self.assertEqual(out, b"payload\nstdin-closed\n")
        session.detach()
        with self.assertRaises(grpc.RpcError) as refused:
            self.client.rt.Attach(pb.AttachRequest(container_id=cid, stdin=True, stdout=True), timeout=10)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("stdin_once", refused.exception.details())
        # Output-only sessions still work.
        self.attach(cid, stdin=False).detach()

    def test_stdin_stays_open_without_stdin_once(self):
        cid = self.interactive("cat", ["sh", "-c", "cat; echo stdin-closed; sleep 3600"])
        session = self.attach(cid)
        session.send("a\n", fin=True)
        session.wait_for("stdout", "a\n")
        session.detach()
        again = self.attach(cid)
        again.send("b\n")
        out = again.wait_for("stdout", "b\n")
        self.assertNotIn(b"stdin-closed", out)
        again.detach()

    def test_refusals(self):
        plain = self.create_container(self.client, self.pod_id, self.pod_cfg, "plain", ["sleep", "3600"])
        self.start_container(self.client, plain)
        cases = (
            (pb.AttachRequest(container_id=plain, stdin=True, stdout=True), grpc.StatusCode.FAILED_PRECONDITION, "not created with stdin"),
            (pb.AttachRequest(container_id=plain, stdout=True, tty=True), grpc.StatusCode.INVALID_ARGUMENT, "tty"),
            (pb.AttachRequest(container_id=plain), grpc.StatusCode.INVALID_ARGUMENT, "stdin"),
            (pb.AttachRequest(container_id="nosuchcontainer", stdout=True), grpc.StatusCode.NOT_FOUND, "nosuch"),
        )
        for request, code, text in cases:
            with self.subTest(request=str(request)):
                with self.assertRaises(grpc.RpcError) as refused:
                    self.client.rt.Attach(request, timeout=10)
                self.assertEqual(refused.exception.code(), code, refused.exception.details())
                self.assertIn(text, refused.exception.details())
        # Output only, to a container without stdin: what it prints from now on.
        talker = self.create_container(self.client, self.pod_id, self.pod_cfg, "talker",
                                       ["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done"])
        self.start_container(self.client, talker)
        session = self.attach(talker, stdin=False)
        session.wait_for("stdout", "tick")
        session.detach()

    def test_tty_attach_resize_and_log(self):
        cid = self.interactive("shell", ["sh"], tty=True)
        session = self.attach(cid, tty=True)
        session.resize(100, 40)
        session.send("stty size; echo marker-$((6*7))\n")
        out = session.wait_for("stdout", "marker-42")
        self.assertIn(b"40 100", out)
        session.resize(132, 50)
        session.send("stty size; [ -t 0 ] && [ -t 2 ] && echo on-a-terminal\n")
        session.wait_for("stdout", "50 132")
        session.wait_for("stdout", "on-a-terminal\r\n")
        session.detach()
        # The terminal's output also reaches the CRI log, as stdout.
        deadline = time.time() + 10
        while "marker-42" not in self.log_of(cid) and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("stdout", self.log_of(cid))
        self.assertIn("marker-42", self.log_of(cid))
        # Detached, the shell goes on (no hangup).
        self.assertEqual(self.container_status(self.client, cid).status.state, pb.CONTAINER_RUNNING)

    def test_attach_again_after_a_daemon_restart(self):
        piped = self.interactive("piped", ["sh", "-c", "while read line; do echo got:$line; done"])
        shell = self.interactive("term", ["sh"], tty=True)
        once = self.interactive("once", ["sh", "-c", "cat; echo stdin-closed; sleep 3600"], stdin_once=True)
        for cid in (piped, shell):
            session = self.attach(cid, tty=cid == shell)
            session.send("echo before\n" if cid == shell else "before\n")
            session.wait_for("stdout", "before")
            session.detach()
        first = self.attach(once)
        first.send("x\n", fin=True)
        first.wait_for("stdout", "stdin-closed")
        first.detach()
        pids = {cid: self.pid_of(cid) for cid in (piped, shell, once)}

        client = self.restart_daemon()

        for cid in (piped, shell, once):
            st = client.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True), timeout=10)
            self.assertEqual(st.status.state, pb.CONTAINER_RUNNING)
            self.assertEqual(json.loads(st.info["info"])["pid"], pids[cid])
        session = self.attach(piped)
        session.send("after\n")
        session.wait_for("stdout", "got:after")
        session.detach()
        session = self.attach(shell, tty=True)
        session.resize(90, 30)
        session.send("stty size\n")
        session.wait_for("stdout", "30 90")
        session.detach()
        # The closed stdin stays closed.
        with self.assertRaises(grpc.RpcError) as refused:
            client.rt.Attach(pb.AttachRequest(container_id=once, stdin=True, stdout=True), timeout=10)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        # What the shell printed after the restart reached its log as well.
        deadline = time.time() + 10
        while "30 90" not in self.log_of(shell) and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("30 90", self.log_of(shell))
