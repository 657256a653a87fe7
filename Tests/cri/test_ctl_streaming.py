"""`podshim ctl exec -i/-t`, `ctl attach` and `ctl port-forward`: ctl's own streaming client (SPDY/3.1
with v4.channel.k8s.io and portforward.k8s.io) against the daemon's streaming server, run the way a
person runs it: a subprocess with pipes, or on a pseudo-terminal made with os.openpty().

Every ctl started here is killed in cleanup if it still runs; pods go with the class daemon's
per-test cleanup. Timeouts below only keep a broken build from hanging the suite; nothing asserts a
duration."""

import fcntl
import hashlib
import os
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import tempfile
import threading
import time
import unittest
import uuid
from concurrent import futures

import grpc

from crihelpers import PODSHIM_BIN, CRITestCase, container_config, pb, pbg, safe_rmtree

# A guard against a hang, never a measure of speed.
PATIENCE = 60


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


class Pty:
    """A pseudo-terminal: ctl gets its slave side as stdin, stdout and stderr; the test types on
    and reads from the master side. The slave stays open here too, to read its termios."""

    def __init__(self, rows, cols):
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.out = bytearray()
        self.consumed = 0

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def attributes(self):
        return termios.tcgetattr(self.slave)

    def write(self, data):
        os.write(self.master, data)

    def read_until(self, needle, timeout=PATIENCE):
        """Reads until `needle` has appeared after what was read before; returns whether it did."""
        start = len(self.out)
        deadline = time.time() + timeout
        while needle not in self.out[start:]:
            left = deadline - time.time()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    return needle in self.out[start:]
        return True

    def next_match(self, pattern, timeout=PATIENCE):
        """Reads until `pattern` matches what came after the last match (or the start); returns it."""
        deadline = time.time() + timeout
        while True:
            found = re.search(pattern, bytes(self.out[self.consumed:]))
            if found:
                self.consumed += found.end()
                return found
            left = deadline - time.time()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    return None

    def close(self):
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class CtlStreamingCase(CRITestCase):
    """Runs `podshim ctl` against the class daemon."""

    def env(self):
        return dict(os.environ, PODSHIM_SOCKET=self.daemon.socket)

    def ctl(self, *args, stdin=None, timeout=PATIENCE):
        """Runs ctl to its end; returns the CompletedProcess (bytes)."""
        return subprocess.run([PODSHIM_BIN, "ctl"] + list(args), input=stdin if stdin is not None else b"",
                              capture_output=True, env=self.env(), timeout=timeout)

    def spawn(self, *args, **kwargs):
        """Starts ctl; it is killed (and reaped) in cleanup if it still runs."""
        kwargs.setdefault("env", self.env())
        process = subprocess.Popen([PODSHIM_BIN, "ctl"] + list(args), **kwargs)
        # A guard for the reads of its pipes, which have no timeout: a ctl that hangs is killed
        # (and the test then fails on what it read).
        watchdog = threading.Timer(4 * PATIENCE, lambda: process.poll() is None and process.kill())
        watchdog.daemon = True
        watchdog.start()

        def stop():
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
            process.wait(timeout=PATIENCE)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()
        self.addCleanup(stop)
        return process

    def on_pty(self, rows, cols, *args):
        """Starts ctl on a new pseudo-terminal of the given size; returns (process, pty)."""
        pty = Pty(rows, cols)
        self.addCleanup(pty.close)
        process = self.spawn(*args, stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, start_new_session=True)
        return process, pty

    def exec_sync(self, cid, command):
        return self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=command, timeout=10), timeout=20)

    def wait_until_gone(self, cid, marker):
        """Waits until no process in the container has `marker` in its command line."""
        deadline = time.time() + PATIENCE
        while True:
            listing = self.exec_sync(cid, ["ps", "-o", "args"]).stdout
            if marker.encode() not in listing or time.time() > deadline:
                return listing
            time.sleep(0.1)


class CtlExecStreamingTest(CtlStreamingCase):

    def setUp(self):
        self.pod_id, _, self.cid = self.run_pod_with_sleeper(self.client, unique("ctl-exec"))

    def test_stdin_through_cat_and_back(self):
        data = os.urandom(1 << 20)
        result = self.ctl("exec", "-i", self.cid, "--", "cat", stdin=data)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout), len(data))
        self.assertEqual(hashlib.sha256(result.stdout).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(result.stderr, b"")

    def test_exit_codes_and_stderr(self):
        for code, command in ((0, "echo out; echo err >&2"), (1, "echo out; echo err >&2; exit 1"),
                              (137, "echo out; kill -9 $$")):
            with self.subTest(code=code):
                # A prefix of the id does, as for every ctl command.
                result = self.ctl("exec", "--stdin", self.cid[:12], "--", "sh", "-c", command)
                self.assertEqual(result.returncode, code, result.stderr)
                self.assertEqual(result.stdout, b"out\n")
                self.assertEqual(result.stderr, b"" if code == 137 else b"err\n")
        # -t alone: a terminal for the command's output, no input.
        result = self.ctl("exec", "-t", self.cid, "--", "sh", "-c", "echo out; [ -t 1 ] && echo on-a-terminal; exit 5")
        self.assertEqual((result.returncode, result.stdout), (5, b"out\r\non-a-terminal\r\n"), result.stderr)
        # Without -i and -t: ExecSync, as before.
        result = self.ctl("exec", self.cid, "--", "sh", "-c", "echo sync; exit 2")
        self.assertEqual((result.returncode, result.stdout), (2, b"sync\n"), result.stderr)

    def test_the_session_ends_with_the_command_not_with_stdin(self):
        process = self.spawn("exec", "-i", self.cid, "--", "sh", "-c", "read line; echo got:$line",
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdin.write(b"first\n")
        process.stdin.flush()
        # Our stdin stays open (closed only in cleanup); the command's end ends the session.
        out = process.stdout.read()
        self.assertEqual((process.wait(timeout=PATIENCE), out), (0, b"got:first\n"), process.stderr.read())

    def test_stdin_that_is_not_a_terminal_runs_without_one(self):
        result = self.ctl("exec", "-i", "-t", self.cid, "--", "sh", "-c",
                          "if [ -t 0 ]; then echo tty; else echo no-tty; fi; cat; echo err >&2",
                          stdin=b"piped\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"no-tty\npiped\n")
        self.assertIn(b"unable to use a TTY", result.stderr)
        self.assertTrue(result.stderr.endswith(b"err\n"), result.stderr)

    def test_terminal_in_raw_mode_and_its_size_followed(self):
        # The command waits for a line first: the size ctl sends before any input is in place by then.
        process, pty = self.on_pty(31, 97, "exec", "-it", self.cid, "--", "sh", "-c",
                                   "read go; stty size; while read line; do stty size; [ \"$line\" = q ] && exit 3; done")
        cooked = pty.attributes()
        size = rb"(\d+) (\d+)\r\n"
        pty.write(b"go\r")
        first = pty.next_match(size)
        self.assertIsNotNone(first, bytes(pty.out))
        self.assertEqual(first.group(0), b"31 97\r\n")
        self.assertEqual(pty.attributes()[3] & (termios.ICANON | termios.ECHO), 0, "not in raw mode")
        pty.resize(40, 120)
        process.send_signal(signal.SIGWINCH)  # the pty is not ctl's controlling terminal: no SIGWINCH of its own
        # The size and the next line travel on different streams: one line at a time until the new size shows.
        seen = []
        while len(seen) < 100 and (not seen or seen[-1] != b"40 120\r\n"):
            pty.write(b"x\r")
            found = pty.next_match(size)
            self.assertIsNotNone(found, bytes(pty.out))
            seen.append(found.group(0))
        self.assertEqual(seen[-1], b"40 120\r\n")
        self.assertEqual(set(seen) - {b"31 97\r\n", b"40 120\r\n"}, set())
        pty.write(b"q\r")
        self.assertEqual(process.wait(timeout=PATIENCE), 3, bytes(pty.out))
        self.assertEqual(pty.attributes(), cooked, "the terminal was not restored")

    def test_a_signal_restores_the_terminal_and_takes_the_command_along(self):
        marker = "sleep %d" % (4000 + os.getpid() % 1000)
        process, pty = self.on_pty(24, 80, "exec", "-it", self.cid, "--", "sh", "-c", "echo ready; exec " + marker)
        cooked = pty.attributes()
        self.assertTrue(pty.read_until(b"ready"), bytes(pty.out))
        self.assertEqual(pty.attributes()[3] & termios.ICANON, 0, "not in raw mode")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=PATIENCE), -signal.SIGTERM)
        self.assertEqual(pty.attributes(), cooked, "the terminal was not restored")
        self.assertNotIn(marker.encode(), self.wait_until_gone(self.cid, marker))

    def test_a_closed_stdout_ends_the_session(self):
        marker = unique("endless")
        process = self.spawn("exec", "-i", self.cid, "--", "sh", "-c", "while :; do echo line; done; echo " + marker,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(process.stdout.readline(), b"line\n")
        process.stdout.close()
        self.assertEqual(process.wait(timeout=PATIENCE), 128 + signal.SIGPIPE, process.stderr.read())
        self.assertNotIn(marker.encode(), self.wait_until_gone(self.cid, marker))


class CtlPortForwardTest(CtlStreamingCase):

    def setUp(self):
        self.pod_id, cfg = self.run_pod(self.client, unique("ctl-forward"))
        # An echo server that greets first (a forking nc: connections are served at once), on 7000.
        self.echo = self.create_container(self.client, self.pod_id, cfg, "echo", [
            "sh", "-c", "printf '#!/bin/sh\\necho hello-from-pod\\nexec cat\\n' > /echo && chmod +x /echo "
                        "&& exec nc -ll -p 7000 -e /echo"])
        self.start_container(self.client, self.echo)
        deadline = time.time() + PATIENCE
        while b":7000 " not in self.exec_sync(self.echo, ["netstat", "-ltn"]).stdout:
            self.assertLess(time.time(), deadline, "nc does not listen on 7000")
            time.sleep(0.05)

    def forward(self, *ports):
        """Starts port-forward; returns (process, {remote: local}) once it printed every port."""
        process = self.spawn("port-forward", self.pod_id[:12], *ports, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        forwarded = {}
        while len(forwarded) < len(ports):
            line = process.stdout.readline().decode()
            if not line:
                process.wait(timeout=PATIENCE)
                self.fail("port-forward ended: %r" % process.stderr.read())
            found = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)\n", line)
            self.assertTrue(found, line)
            forwarded[int(found.group(2))] = int(found.group(1))
        return process, forwarded

    @staticmethod
    def echo_through(port, data):
        """Greeting and echo of `data` through one connection, written while it is read."""
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as connection:
            def send():
                connection.sendall(data)
                connection.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send)
            sender.start()
            received = bytearray()
            while True:
                chunk = connection.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
            sender.join(PATIENCE)
            return bytes(received)

    def test_concurrent_connections_both_ways_and_a_refused_port(self):
        process, ports = self.forward("0:7000", ":9")
        self.assertNotIn(0, ports.values())
        payloads = [os.urandom((1 << 20) + i) for i in range(3)]
        results = {}

        def one(i):
            try:
                results[i] = self.echo_through(ports[7000], payloads[i])
            except Exception as error:  # reported by the assertion below
                results[i] = error

        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
        for i, payload in enumerate(payloads):
            with self.subTest(connection=i):
                self.assertIsInstance(results.get(i), bytes, results.get(i))
                self.assertTrue(results[i].startswith(b"hello-from-pod\n"), results[i][:40])
                echoed = results[i][len(b"hello-from-pod\n"):]
                self.assertEqual(len(echoed), len(payload))
                self.assertEqual(hashlib.sha256(echoed).digest(), hashlib.sha256(payload).digest())
        # Nothing listens on 9 in the pod: the local connection is closed, the reason goes to stderr.
        with socket.create_connection(("127.0.0.1", ports[9]), timeout=PATIENCE) as refused:
            try:
                self.assertEqual(refused.recv(100), b"")
            except ConnectionResetError:
                pass
        # And forwarding goes on.
        self.assertTrue(self.echo_through(ports[7000], b"again").endswith(b"again"))
        process.send_signal(signal.SIGINT)
        self.assertEqual(process.wait(timeout=PATIENCE), 0)
        err = process.stderr.read().decode()
        self.assertRegex(err, r"127\.0\.0\.1:%d -> 9: error forwarding port 9 to pod: .*connect" % ports[9])
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for port in ports.values():
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=PATIENCE).close()

    def test_a_fixed_local_port_and_sigterm(self):
        with socket.socket() as probe:  # a free port, then given to ctl
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        process, ports = self.forward("%d:7000" % free)
        self.assertEqual(ports, {7000: free})
        self.assertEqual(self.echo_through(free, b"ping"), b"hello-from-pod\nping")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=PATIENCE), 0, process.stderr.read())

    def test_bad_arguments(self):
        for ports in (["70000"], ["1:2:3"], ["x"], []):
            with self.subTest(ports=ports):
                result = self.ctl("port-forward", self.pod_id, *ports)
                self.assertEqual(result.returncode, 64, result.stderr)  # ArgumentParser's usage status
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            result = self.ctl("port-forward", self.pod_id, "%d:7000" % busy.getsockname()[1])
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"Address already in use", result.stderr)
        result = self.ctl("port-forward", "nosuchpod", "80")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"nosuchpod", result.stderr)


class CtlAttachTest(CtlStreamingCase):
    """Attach is being added to the daemon alongside ctl's client: these skip while the daemon
    refuses interactive containers or answers Attach with UNIMPLEMENTED."""

    def setUp(self):
        self.pod_id, self.pod_cfg = self.run_pod(self.client, unique("ctl-attach"))

    def interactive(self, name, command, stdin=True, tty=False):
        cfg = container_config(name, command)
        cfg.stdin, cfg.tty = stdin, tty
        try:
            cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=self.pod_id, config=cfg, sandbox_config=self.pod_cfg), timeout=30).container_id
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT) \
                    and re.search(r"stdin|tty", error.details() or ""):
                self.skipTest("the daemon does not create interactive containers yet: %s" % error.details())
            raise
        self.start_container(self.client, cid)
        try:
            self.client.rt.Attach(pb.AttachRequest(container_id=cid, stdout=True, tty=tty), timeout=10)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.skipTest("Attach is not implemented by this daemon")
            raise
        return cid

    def test_stdin_and_output_until_the_container_exits(self):
        cid = self.interactive("reader", ["sh", "-c", "read line; echo got:$line; echo err:$line >&2; exit 4"])
        process = self.spawn("attach", "-i", cid[:12], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdin.write(b"hello\n")
        process.stdin.flush()
        # Our stdin stays open: the container's exit ends the session, with Success (status 0,
        # whatever the container's).
        out = process.stdout.read()
        self.assertEqual((process.wait(timeout=PATIENCE), out, process.stderr.read()), (0, b"got:hello\n", b"err:hello\n"))
        self.assertEqual(self.wait_container_state(self.client, cid, pb.CONTAINER_EXITED).exit_code, 4)

    def test_output_only_and_leaving_keeps_the_container(self):
        cid = self.interactive("talker", ["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done"],
                               stdin=False)
        process = self.spawn("attach", cid, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertTrue(process.stdout.readline().startswith(b"tick"))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=PATIENCE)
        self.assertEqual(self.container_status(self.client, cid).status.state, pb.CONTAINER_RUNNING)

    def test_terminal_attach_in_raw_mode(self):
        cid = self.interactive("shell", ["sh"], tty=True)
        process, pty = self.on_pty(33, 101, "attach", "-i", "-t", cid)
        cooked = pty.attributes()
        pty.write(b"stty size; echo marker-$((6*7)); exit 5\r")
        self.assertTrue(pty.read_until(b"marker-42\r\n"), bytes(pty.out))
        self.assertIn(b"33 101\r\n", bytes(pty.out))
        self.assertEqual(process.wait(timeout=PATIENCE), 0, bytes(pty.out))
        self.assertEqual(pty.attributes(), cooked, "the terminal was not restored")


class FakeStreamingServer:
    """An Exec RPC (a gRPC server of our own on a Unix socket) whose URL points at a TCP server
    that answers the upgrade with `answer` (bytes) and then closes: the failures a client must
    report, not hang on."""

    class Runtime(pbg.RuntimeServiceServicer):
        def __init__(self, url):
            self.url = url

        def Exec(self, request, context):
            return pb.ExecResponse(url=self.url)

    def __init__(self, base, answer, hold=False):
        # hold: keep our side open after the answer (a closed one makes NIO drop bytes that came
        # with the 101, which a live server's next frames never do).
        self.hold = hold
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.answer = answer
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        self.socket = os.path.join(base, "fake.sock")
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        url = "http://127.0.0.1:%d/exec/faketoken" % self.listener.getsockname()[1]
        pbg.add_RuntimeServiceServicer_to_server(self.Runtime(url), self.grpc)
        self.grpc.add_insecure_port("unix:" + self.socket)
        self.grpc.start()

    def serve(self):
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(PATIENCE)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            connection.sendall(self.answer)
            if not self.hold:
                connection.shutdown(socket.SHUT_WR)
            try:
                while connection.recv(4096):
                    pass
            except OSError:
                pass

    def close(self):
        self.grpc.stop(None)
        self.listener.close()
        self.thread.join(PATIENCE)


class CtlStreamingFailureTest(unittest.TestCase):
    """The client's side of failed upgrades and broken sessions, against a fake server (no daemon)."""

    UPGRADED = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")

    @classmethod
    def setUpClass(cls):
        if not os.access(PODSHIM_BIN, os.X_OK):
            raise unittest.SkipTest("no podshim binary at %s" % PODSHIM_BIN)

    def exec_against(self, answer, hold=False):
        base = tempfile.mkdtemp(prefix="podshim-ctl-fake-")
        self.addCleanup(safe_rmtree, base)
        server = FakeStreamingServer(base, answer, hold)
        self.addCleanup(server.close)
        result = subprocess.run([PODSHIM_BIN, "ctl", "exec", "-i", "a" * 64, "--", "true"], input=b"",
                                capture_output=True, timeout=PATIENCE, env=dict(os.environ, PODSHIM_SOCKET=server.socket))
        return result, server

    def test_a_refused_upgrade_is_reported(self):
        body = b"unknown or expired token\n"
        result, server = self.exec_against(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                                           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(b"refused /exec/faketoken: 404 unknown or expired token", result.stderr)
        request = server.requests[0].decode()
        self.assertTrue(request.startswith("POST /exec/faketoken HTTP/1.1\r\n"), request)
        headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in request.split("\r\n")[1:] if ":" in line}
        self.assertEqual(headers["upgrade"].lower(), "spdy/3.1")
        self.assertIn("upgrade", headers["connection"].lower())
        self.assertEqual(headers["x-stream-protocol-version"], "v4.channel.k8s.io")

    def test_a_101_without_the_protocol_is_refused(self):
        result, _ = self.exec_against(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(b"did not switch to SPDY/3.1 with v4.channel.k8s.io", result.stderr)

    def test_a_session_that_closes_or_sends_garbage_ends_with_an_error(self):
        cases = ((self.UPGRADED, False, b"the streaming connection closed"),
                 # A control frame of SPDY version 2 right behind the 101, in the same segment.
                 (self.UPGRADED + b"\x80\x02\x00\x01\x00\x00\x00\x00", True,
                  b"broke the protocol: SPDY: control frame of version 2"))
        for answer, hold, reason in cases:
            with self.subTest(reason=reason):
                result, _ = self.exec_against(answer, hold)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(reason, result.stderr)
