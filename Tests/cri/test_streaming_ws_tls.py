"""Port forwarding over WebSocket (v4.channel.k8s.io and its base64 variant: ports in the URL's
query, data channel 2i and error channel 2i+1 for port i, each opened by the port in 2 bytes
little-endian) and the streaming server over TLS (--stream-tls-cert/--stream-tls-key: https URLs,
exec over wss and SPDY, no plain HTTP on the port, bad flags or files stop the start). Clients of
the suite's own (wsclient.py, spdyclient.py), on loopback only."""

import base64
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse

from crihelpers import CRITestCase, pb
import spdyclient
import wsclient

ECHO_PORT = 7000
WEB_PORT = 8080
CLOSED_PORT = 9  # nothing listens there: connection refused

SERVERS = ("mkdir -p /w && head -c 300000 /dev/urandom > /w/blob && echo forwarded > /w/index.html "
           "&& httpd -p %d -h /w && exec nc -ll -p %d -e cat" % (WEB_PORT, ECHO_PORT))


def open_websocket(url, query="", protocols=("v4.channel.k8s.io",), context=None, key=None):
    """Connects (through TLS with `context`) and upgrades `url` + `?query`; (socket, chosen
    subprotocol). Raises spdyclient.HTTPError for a refusal."""
    parsed = urllib.parse.urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=30)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname=parsed.hostname)
    key = key or base64.b64encode(os.urandom(16)).decode()
    target = parsed.path + ("?" + query if query else "")
    lines = ["GET %s HTTP/1.1" % target, "Host: %s:%d" % (parsed.hostname, parsed.port),
             "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Protocol: " + ", ".join(protocols)]
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        headers = spdyclient.read_upgrade_response(sock)
    except BaseException:
        sock.close()
        raise
    expected = base64.b64encode(hashlib.sha1((key + wsclient.GUID).encode()).digest()).decode()
    assert headers.get("sec-websocket-accept") == [expected], headers
    return sock, headers.get("sec-websocket-protocol", [""])[0]


class Forward:
    """One WebSocket port-forward session: a reader thread collects each channel's messages."""

    def __init__(self, sock, base64_variant=False):
        self.sock = sock
        self.sock.settimeout(None)  # the reader waits; close() ends it
        self.conn = wsclient.Conn(sock)
        self.base64 = base64_variant
        self.messages = {}    # channel -> [payload, ...]
        self.opcodes = set()  # of the data messages received
        self.close_code = None
        self.ended = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            while True:
                frame = self.conn.read()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 8:
                    with self.cond:
                        self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 0
                    break
                if opcode in (1, 2) and payload:
                    channel, data = payload[0], payload[1:]
                    if self.base64:
                        channel, data = channel - ord("0"), base64.b64decode(data)
                    with self.cond:
                        self.opcodes.add(opcode)
                        self.messages.setdefault(channel, []).append(bytes(data))
                        self.cond.notify_all()
        except OSError:
            pass
        finally:
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def send(self, channel, data):
        if self.base64:
            self.conn.send(bytes([ord("0") + channel]) + base64.b64encode(data), opcode=1)
        else:
            self.conn.send(bytes([channel]) + data)

    def send_all(self, channel, data, chunk=32768):
        for i in range(0, len(data), chunk):
            self.send(channel, data[i:i + chunk])

    def first(self, channel):
        with self.cond:
            return (self.messages.get(channel) or [None])[0]

    def data(self, channel):
        """What came on `channel` after its first message (the port)."""
        with self.cond:
            return b"".join(self.messages.get(channel, [])[1:])

    def wait(self, predicate, timeout=30):
        """Whether `predicate()` came true before the session ended or `timeout` passed (a guard
        against a hang, not a measurement)."""
        deadline = time.time() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.time()
                if left <= 0 or self.ended:
                    return predicate()
                self.cond.wait(left)
            return True

    def wait_end(self, timeout=30):
        with self.cond:
            self.cond.wait_for(lambda: self.ended, timeout)
            return self.ended

    def close(self, send_close=True):
        if send_close and not self.ended:
            try:
                self.conn.send(struct.pack(">H", 1000), opcode=8)
            except OSError:
                pass
            self.wait_end(10)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(10)


def port_bytes(port):
    return struct.pack("<H", port)


def http_response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


class PodServers:
    """A pod whose container serves HTTP on WEB_PORT and echoes on ECHO_PORT."""

    def start_servers(self, name):
        pod_id, cfg = self.run_pod(self.client, name)
        cid = self.create_container(self.client, pod_id, cfg, "servers", ["sh", "-c", SERVERS])
        self.start_container(self.client, cid)
        # Both listen before any test connects: LISTEN (0A) sockets in the pod's /proc/net/tcp*.
        wanted = {":%04X" % WEB_PORT, ":%04X" % ECHO_PORT}
        deadline = time.time() + 20
        while True:
            r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["cat", "/proc/net/tcp", "/proc/net/tcp6"],
                                                           timeout=5), timeout=15)
            listening = {fields[1][-5:] for fields in (line.split() for line in r.stdout.decode().splitlines()[1:])
                         if len(fields) > 3 and fields[3] == "0A"}
            if wanted <= listening:
                return pod_id, cid
            self.assertLess(time.time(), deadline, "servers not listening: %r" % r.stdout[-500:])
            time.sleep(0.1)

    def forward_url(self, pod_id):
        return self.client.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id), timeout=10).url


class WebSocketPortForwardTest(PodServers, CRITestCase):

    def test_two_ports_bytes_both_ways_and_a_refused_port(self):
        pod_id, _ = self.start_servers("wspf-two")
        url = self.forward_url(pod_id)
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/portforward/[A-Za-z0-9_-]{22}$")
        sock, chosen = open_websocket(url, "port=%d&port=%d,%d" % (ECHO_PORT, WEB_PORT, CLOSED_PORT))
        self.assertEqual(chosen, "v4.channel.k8s.io")
        f = Forward(sock)
        try:
            # Every channel opens with its port, data 2i and error 2i+1.
            self.assertTrue(f.wait(lambda: all(c in f.messages for c in range(6))), f.messages)
            for i, port in enumerate((ECHO_PORT, WEB_PORT, CLOSED_PORT)):
                self.assertEqual(f.first(2 * i), port_bytes(port))
                self.assertEqual(f.first(2 * i + 1), port_bytes(port))
            # The refused port: its error on its error channel, nothing on its data channel.
            self.assertTrue(f.wait(lambda: len(f.data(5)) > 0))
            error = f.data(5)
            self.assertIn(b"error forwarding port %d" % CLOSED_PORT, error)
            self.assertIn(b"connect 127.0.0.1:%d" % CLOSED_PORT, error)
            # HTTP through the second port while a megabyte goes through the echo and back.
            payload = os.urandom(1 << 20)
            sender = threading.Thread(target=f.send_all, args=(0, payload), daemon=True)
            sender.start()
            f.send(2, b"GET /blob HTTP/1.0\r\n\r\n")
            self.assertTrue(f.wait(lambda: len(f.data(0)) >= len(payload)), len(f.data(0)))
            sender.join(30)
            self.assertEqual(hashlib.sha256(f.data(0)).hexdigest(), hashlib.sha256(payload).hexdigest())
            self.assertTrue(f.wait(lambda: http_response_complete(f.data(2))), f.data(2)[:300])
            self.assertRegex(f.data(2)[:20], rb"^HTTP/1\.[01] 200 ")
            self.assertEqual(len(f.data(2).split(b"\r\n\r\n", 1)[1]), 300000)
            # httpd closed its connection; the echo port still works in the same session.
            f.send(0, b"still here")
            self.assertTrue(f.wait(lambda: f.data(0).endswith(b"still here")))
            self.assertEqual((f.data(1), f.data(3), f.data(4)), (b"", b"", b""))
            self.assertFalse(f.ended)
            f.close()
            self.assertEqual(f.close_code, 1000)
        finally:
            f.close(send_close=False)

    def test_the_session_ends_once_every_port_is_done(self):
        pod_id, _ = self.start_servers("wspf-end")
        sock, _ = open_websocket(self.forward_url(pod_id), "port=%d" % WEB_PORT)
        f = Forward(sock)
        try:
            f.send(0, b"GET /index.html HTTP/1.0\r\n\r\n")
            self.assertTrue(f.wait_end(), "the session stayed open")
            self.assertEqual(f.close_code, 1000)
            self.assertTrue(f.data(0).endswith(b"\r\n\r\nforwarded\n"), f.data(0)[:300])
            self.assertEqual(f.data(1), b"")
        finally:
            f.close(send_close=False)
        # Only refused ports: the session ends too, after the errors.
        sock, _ = open_websocket(self.forward_url(pod_id), "port=%d" % CLOSED_PORT)
        f = Forward(sock)
        try:
            self.assertTrue(f.wait_end(), "the session stayed open")
            self.assertEqual(f.close_code, 1000)
            self.assertIn(b"error forwarding port %d" % CLOSED_PORT, f.data(1))
        finally:
            f.close(send_close=False)

    def test_base64_variant(self):
        pod_id, _ = self.start_servers("wspf-b64")
        sock, chosen = open_websocket(self.forward_url(pod_id), "port=%d" % ECHO_PORT,
                                      protocols=("v4.base64.channel.k8s.io",))
        self.assertEqual(chosen, "v4.base64.channel.k8s.io")
        f = Forward(sock, base64_variant=True)
        try:
            self.assertTrue(f.wait(lambda: 0 in f.messages and 1 in f.messages))
            self.assertEqual((f.first(0), f.first(1)), (port_bytes(ECHO_PORT), port_bytes(ECHO_PORT)))
            data = bytes(range(256)) * 64
            f.send(0, data)
            self.assertTrue(f.wait(lambda: len(f.data(0)) >= len(data)))
            self.assertEqual(f.data(0), data)
            self.assertEqual(f.opcodes, {1}, "base64 messages are text")
            f.close()
            self.assertEqual(f.close_code, 1000)
        finally:
            f.close(send_close=False)

    def test_bad_ports_are_refused_before_the_upgrade(self):
        pod_id, _ = self.start_servers("wspf-bad")
        url = self.forward_url(pod_id)
        too_many = "port=" + ",".join(["80"] * 101)
        for query in ("", "other=1", "port=", "port=abc", "port=0", "port=65536", "port=80,", "port=-1",
                      "port=80&port=", "port=%2B80", too_many):
            with self.subTest(query=query):
                with self.assertRaises(spdyclient.HTTPError) as refused:
                    open_websocket(url, query)
                self.assertEqual(refused.exception.status, 400, refused.exception.body)
                self.assertIn("port", refused.exception.body)
        # The token was not spent by those: the URL still works (percent-encoded commas too).
        sock, _ = open_websocket(url, "port=%d%%2C%d" % (ECHO_PORT, CLOSED_PORT))
        f = Forward(sock)
        try:
            self.assertTrue(f.wait(lambda: 3 in f.messages))
            self.assertEqual(f.first(2), port_bytes(CLOSED_PORT))
        finally:
            f.close()
        # Once used, it is gone; a subprotocol of exec is not port forwarding's.
        with self.assertRaises(spdyclient.HTTPError) as refused:
            open_websocket(url, "port=%d" % ECHO_PORT)
        self.assertEqual(refused.exception.status, 404)
        with self.assertRaises(spdyclient.HTTPError) as refused:
            open_websocket(self.forward_url(pod_id), "port=%d" % ECHO_PORT, protocols=("v5.channel.k8s.io",))
        self.assertEqual(refused.exception.status, 403)
        self.assertIn("v4.channel.k8s.io", refused.exception.body)
        # client-go's SPDY-in-WebSocket tunnel (crictl port-forward -r websocket) sends no ports:
        # told that its protocol is not served, not that the query lacks ports.
        with self.assertRaises(spdyclient.HTTPError) as refused:
            open_websocket(self.forward_url(pod_id), protocols=("SPDY/3.1+portforward.k8s.io",))
        self.assertEqual(refused.exception.status, 403)
        self.assertIn("SPDY/3.1+portforward.k8s.io is served", refused.exception.body)


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certificates(directory):
    """A test CA and a server certificate it signed for IP 127.0.0.1, plus a key that matches
    nothing; {name: path}."""
    os.makedirs(directory, exist_ok=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=podshim test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=directory)
    openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key", cwd=directory)
    with open(os.path.join(directory, "junk.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    return {name: os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key", "other.key", "junk.pem")}


def tls_context(cafile):
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = True
    return context


class StreamingTLSTest(PodServers, CRITestCase):
    start_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = make_certificates(os.path.join(cls.base, "tls"))
        cls.daemon = cls.new_daemon(extra_args=["--stream-tls-cert", cls.certs["server.crt"],
                                                "--stream-tls-key", cls.certs["server.key"]])
        cls.daemon.start()
        cls.client = cls.new_client(cls.daemon.socket)

    def exec_url(self, cid, cmd, stdin=False):
        return self.client.rt.Exec(pb.ExecRequest(container_id=cid, cmd=cmd, stdin=stdin, stdout=True, stderr=True),
                                   timeout=10).url

    def test_exec_over_wss_and_spdy_with_the_certificate_given(self):
        _, _, cid = self.run_pod_with_sleeper(self.client, "tls-exec")
        context = tls_context(self.certs["ca.crt"])
        url = self.exec_url(cid, ["sh", "-c", "cat; echo err >&2"], stdin=True)
        self.assertRegex(url, r"^https://127\.0\.0\.1:\d+/exec/[A-Za-z0-9_-]{22}$")
        sock, chosen = open_websocket(url, protocols=("v5.channel.k8s.io",), context=context)
        try:
            with open(self.certs["server.crt"]) as f:
                self.assertEqual(sock.getpeercert(binary_form=True), ssl.PEM_cert_to_DER_cert(f.read()))
            c = wsclient.Conn(sock)
            c.channel(0, b"over wss\n")
            c.send(bytes([255, 0]))
            out, err, status, code = bytearray(), bytearray(), bytearray(), None
            while True:
                frame = c.read()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 8:
                    code = struct.unpack(">H", payload[:2])[0]
                    break
                if opcode == 2 and payload:
                    {1: out, 2: err, 3: status}.get(payload[0], bytearray()).extend(payload[1:])
        finally:
            sock.close()
        self.assertEqual((bytes(out), bytes(err), code), (b"over wss\n", b"err\n", 1000))
        self.assertEqual(spdyclient.json.loads(bytes(status).decode())["status"], "Success")
        # SPDY, as a kubelet speaks it, through the same TLS.
        url = self.exec_url(cid, ["echo", "over spdy"])
        parsed = urllib.parse.urlparse(url)
        sock = context.wrap_socket(socket.create_connection((parsed.hostname, parsed.port), timeout=30),
                                   server_hostname=parsed.hostname)
        try:
            sock.sendall(("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: 0\r\nConnection: Upgrade\r\n"
                          "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
                          % (parsed.path, parsed.hostname, parsed.port)).encode())
            headers = spdyclient.read_upgrade_response(sock)
            self.assertEqual(headers["x-stream-protocol-version"], ["v4.channel.k8s.io"])
            s = spdyclient.Session(sock)
            ids = {kind: s.syn_stream({"streamtype": kind}) for kind in ("error", "stdout", "stderr")}
            out, status, open_streams = bytearray(), bytearray(), set(ids.values())
            while open_streams:
                frame = s.read_frame()
                self.assertIsNotNone(frame, "closed early")
                kind, sid, flags, payload = frame
                if kind == "data":
                    (out if sid == ids["stdout"] else status if sid == ids["error"] else bytearray()).extend(payload)
                    if flags & spdyclient.FIN:
                        open_streams.discard(sid)
            s.goaway()
        finally:
            sock.close()
        self.assertEqual(bytes(out), b"over spdy\n")
        self.assertEqual(spdyclient.json.loads(bytes(status).decode())["status"], "Success")

    def test_port_forward_over_tls(self):
        pod_id, _ = self.start_servers("tls-forward")
        url = self.forward_url(pod_id)
        self.assertRegex(url, r"^https://127\.0\.0\.1:\d+/portforward/")
        sock, _ = open_websocket(url, "port=%d" % ECHO_PORT, context=tls_context(self.certs["ca.crt"]))
        f = Forward(sock)
        try:
            payload = os.urandom(300000)
            sender = threading.Thread(target=f.send_all, args=(0, payload), daemon=True)
            sender.start()
            self.assertTrue(f.wait(lambda: len(f.data(0)) >= len(payload)))
            sender.join(30)
            self.assertEqual(f.data(0), payload)
        finally:
            f.close()

    def test_plain_http_and_untrusted_clients_get_nothing(self):
        _, _, cid = self.run_pod_with_sleeper(self.client, "tls-plain")
        url = self.exec_url(cid, ["echo", "reached"])
        parsed = urllib.parse.urlparse(url)
        raw = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
        try:
            raw.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
                         % (parsed.path, parsed.hostname, parsed.port, base64.b64encode(os.urandom(16)).decode())).encode())
            answer = b""
            try:
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            except OSError:
                pass  # a reset is a refusal too
        finally:
            raw.close()
        self.assertFalse(answer.startswith(b"HTTP/"), answer[:200])
        # A client that does not trust the test CA stops at the handshake.
        with self.assertRaises(ssl.SSLCertVerificationError):
            open_websocket(url, protocols=("v5.channel.k8s.io",), context=ssl.create_default_context())
        # Neither spent the token: the exec still runs over TLS.
        out, _, status, _ = self.ws_exec(url)
        self.assertEqual((out, status["status"]), (b"reached\n", "Success"))

    def ws_exec(self, url):
        sock, _ = open_websocket(url, protocols=("v5.channel.k8s.io",), context=tls_context(self.certs["ca.crt"]))
        c = wsclient.Conn(sock)
        out, err, status, code = bytearray(), bytearray(), bytearray(), None
        try:
            while True:
                frame = c.read()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 8:
                    code = struct.unpack(">H", payload[:2])[0]
                    break
                if opcode == 2 and payload:
                    {1: out, 2: err, 3: status}.get(payload[0], bytearray()).extend(payload[1:])
        finally:
            sock.close()
        return bytes(out), bytes(err), spdyclient.json.loads(bytes(status).decode()), code


class StreamingTLSFlagsTest(CRITestCase):
    """Bad TLS settings stop `podshim serve` with a message naming the flag (or key) and the file."""
    start_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = make_certificates(os.path.join(cls.base, "tls"))

    def refused_start(self, args):
        d = self.new_daemon(extra_args=args)
        d.spawn()
        try:
            code = d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            d.kill()
            self.fail("the daemon started with %s" % args)
        self.assertNotEqual(code, 0)
        text = d.stderr_text()
        self.assertNotIn("Fatal error", text)  # a message, not a crash
        return text

    def test_bad_flags_and_files_are_refused_at_start(self):
        c = self.certs
        missing = os.path.join(self.base, "tls", "missing.pem")
        cases = [
            (["--stream-tls-cert", c["server.crt"]], ["--stream-tls-cert", "--stream-tls-key", "both or neither"]),
            (["--stream-tls-key", c["server.key"]], ["--stream-tls-key", "--stream-tls-cert", "both or neither"]),
            (["--stream-tls-cert", missing, "--stream-tls-key", c["server.key"]], ["--stream-tls-cert", missing, "ENOENT"]),
            (["--stream-tls-cert", c["server.crt"], "--stream-tls-key", missing], ["--stream-tls-key", missing, "ENOENT"]),
            (["--stream-tls-cert", c["junk.pem"], "--stream-tls-key", c["server.key"]], ["--stream-tls-cert", c["junk.pem"]]),
            (["--stream-tls-cert", c["server.crt"], "--stream-tls-key", c["server.crt"]], ["--stream-tls-key", c["server.crt"]]),
            (["--stream-tls-cert", c["server.crt"], "--stream-tls-key", c["other.key"]],
             ["--stream-tls-key", c["other.key"], c["server.crt"]]),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                text = self.refused_start(args)
                for word in words:
                    self.assertIn(word, text)

    def test_the_config_file_keys(self):
        config = os.path.join(self.base, "half.conf")
        with open(config, "w") as f:
            f.write("stream-tls-cert = %s\n" % self.certs["server.crt"])
        text = self.refused_start(["--config", config])
        self.assertIn("stream-tls-cert (config file)", text)
        self.assertIn("--stream-tls-key", text)
        # The flag completes the file's half.
        d = self.new_daemon(extra_args=["--config", config, "--stream-tls-key", self.certs["server.key"]])
        d.start()
        client = self.new_client(d.socket)
        _, _, cid = self.run_pod_with_sleeper(client, "tls-config")
        url = client.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["true"], stdout=True), timeout=10).url
        self.assertTrue(url.startswith("https://127.0.0.1:"), url)
        self.remove_all_pods(client)
        d.stop()
