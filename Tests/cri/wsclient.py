"""A small WebSocket client (RFC 6455) for the CRI streaming server's exec, written for these
tests: the handshake, masked client frames, the channel protocols (v5/v4.channel.k8s.io)."""

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import urllib.parse

import spdyclient

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def connect(url, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"), key=None, version="13", timeout=30):
    """(socket, chosen subprotocol); raises spdyclient.HTTPError for a refusal."""
    parsed = urllib.parse.urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % parsed.path, "Host: %s:%d" % (parsed.hostname, parsed.port),
             "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: " + version,
             "Sec-WebSocket-Protocol: " + ", ".join(protocols)]
    if key:
        lines.append("Sec-WebSocket-Key: " + key)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    headers = spdyclient.read_upgrade_response(sock)
    expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    assert headers.get("sec-websocket-accept") == [expected], headers
    return sock, headers.get("sec-websocket-protocol", [""])[0]


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.lock = threading.Lock()

    def send(self, payload, opcode=2):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.sock.sendall(head + mask + masked)

    def channel(self, number, payload):
        for i in range(0, max(len(payload), 1), 32768):
            self.send(bytes([number]) + payload[i:i + 32768])

    def read(self):
        """(opcode, payload) or None at EOF."""
        def need(n):
            while len(self.buffer) < n:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return False
                self.buffer += chunk
            return True
        if not need(2):
            return None
        opcode = self.buffer[0] & 0x0F
        n = self.buffer[1] & 0x7F
        offset = 2
        if n == 126:
            if not need(4):
                return None
            n = struct.unpack(">H", self.buffer[2:4])[0]
            offset = 4
        elif n == 127:
            if not need(10):
                return None
            n = struct.unpack(">Q", self.buffer[2:10])[0]
            offset = 10
        if not need(offset + n):
            return None
        payload = self.buffer[offset:offset + n]
        self.buffer = self.buffer[offset + n:]
        return opcode, payload


def run_exec(url, stdin=None, protocols=("v5.channel.k8s.io",), timeout=60):
    """A whole exec; (stdout, stderr, status dict, close code)."""
    sock, chosen = connect(url, protocols=protocols, timeout=timeout)
    c = Conn(sock)
    if stdin is not None:
        def feed():
            c.channel(0, stdin)
            if chosen.startswith("v5."):
                c.send(bytes([255, 0]))
        threading.Thread(target=feed, daemon=True).start()
    out, err, status, code = bytearray(), bytearray(), bytearray(), None
    while True:
        frame = c.read()
        if frame is None:
            break
        opcode, payload = frame
        if opcode == 8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            break
        if opcode == 2 and payload:
            {1: out, 2: err, 3: status}.get(payload[0], bytearray()).extend(payload[1:])
    sock.close()
    return bytes(out), bytes(err), json.loads(bytes(status).decode()) if status else None, code
