"""A small SPDY/3.1 client for the CRI streaming server, written for these tests from the SPDY/3
draft and the Kubernetes remote-command protocol (v4.channel.k8s.io): the HTTP upgrade, control and
data frames, header blocks compressed with zlib and the SPDY/3 dictionary."""

import json
import socket
import struct
import threading
import urllib.parse
import zlib

WORDS = [
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location",
    "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
    "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
    "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
]
TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in WORDS) + TAIL.encode()
assert len(DICTIONARY) == 1423

FIN = 0x01


class HTTPError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body))
        self.status = status
        self.body = body


def read_upgrade_response(sock):
    """The headers (lower-case names, lists of values) of a 101 response; any other status closes
    the socket and raises HTTPError with the body and headers."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise HTTPError(0, "connection closed: " + head.decode(errors="replace"))
        head += chunk
    status_line, *header_lines = head.decode().split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
    if status != 101:
        body = b""
        length = int(headers.get("content-length", ["0"])[0])
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                break
            body += chunk
        sock.close()
        error = HTTPError(status, body.decode(errors="replace"))
        error.headers = headers
        raise error
    return headers


def upgrade(url, versions=("v5.channel.k8s.io", "v4.channel.k8s.io"), upgrade_header="SPDY/3.1", method="POST",
            timeout=30):
    """Connects and upgrades; returns (socket, chosen version). Raises HTTPError for a refusal."""
    parsed = urllib.parse.urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
    target = parsed.path + ("?" + parsed.query if parsed.query else "")
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s:%d" % (parsed.hostname, parsed.port),
             "Content-Length: 0"]
    if upgrade_header:
        lines += ["Connection: Upgrade", "Upgrade: " + upgrade_header]
    lines += ["X-Stream-Protocol-Version: " + v for v in versions]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    headers = read_upgrade_response(sock)
    return sock, headers.get("x-stream-protocol-version", [""])[0]


class Session:
    """One SPDY session over an upgraded socket."""

    def __init__(self, sock):
        self.sock = sock
        self.compress = zlib.compressobj(zdict=DICTIONARY)
        self.decompress = zlib.decompressobj(zdict=DICTIONARY)
        self.buffer = b""
        self.next_id = 1
        self.pongs = []  # ids of our PINGs the server echoed

    def headers_block(self, headers):
        plain = struct.pack(">I", len(headers))
        for k, v in headers.items():
            plain += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        return self.compress.compress(plain) + self.compress.flush(zlib.Z_SYNC_FLUSH)

    def control(self, ftype, flags, payload):
        self.sock.sendall(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload)

    def syn_stream(self, headers):
        sid = self.next_id
        self.next_id += 2
        self.control(1, 0, struct.pack(">IIH", sid, 0, 0) + self.headers_block(headers))
        return sid

    def data(self, sid, payload, fin=False):
        for i in range(0, max(len(payload), 1), 65536):
            chunk = payload[i:i + 65536]
            last = i + 65536 >= len(payload)
            self.sock.sendall(struct.pack(">II", sid, ((FIN if fin and last else 0) << 24) | len(chunk)) + chunk)

    def rst(self, sid, status=5):
        self.control(3, 0, struct.pack(">II", sid, status))

    def ping(self, pid):
        self.control(6, 0, struct.pack(">I", pid))

    def goaway(self):
        self.control(7, 0, struct.pack(">II", 0, 0))

    def read_frame(self):
        """(kind, stream, flags, payload or headers); kind 'data' or a control type number. None at EOF."""
        while True:
            if len(self.buffer) >= 8:
                length = int.from_bytes(self.buffer[5:8], "big")
                if len(self.buffer) >= 8 + length:
                    frame, self.buffer = self.buffer[:8 + length], self.buffer[8 + length:]
                    flags = frame[4]
                    if frame[0] & 0x80:
                        ftype = int.from_bytes(frame[2:4], "big")
                        if ftype in (1, 2, 8):
                            sid = int.from_bytes(frame[8:12], "big") & 0x7fffffff
                            offset = 18 if ftype == 1 else 12
                            plain = self.decompress.decompress(frame[offset:])
                            n = int.from_bytes(plain[:4], "big")
                            i, headers = 4, {}
                            for _ in range(n):
                                kl = int.from_bytes(plain[i:i + 4], "big")
                                k = plain[i + 4:i + 4 + kl].decode()
                                i += 4 + kl
                                vl = int.from_bytes(plain[i:i + 4], "big")
                                headers[k] = plain[i + 4:i + 4 + vl].decode()
                                i += 4 + vl
                            return ftype, sid, flags, headers
                        return ftype, int.from_bytes(frame[8:12], "big") & 0x7fffffff, flags, frame[8:]
                    return "data", int.from_bytes(frame[0:4], "big"), flags, frame[8:]
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buffer += chunk


def run_exec(url, stdin=None, stdout=True, stderr=True, on_open=None, timeout=60):
    """Runs a whole exec the way client-go's v4 executor does; returns (stdout, stderr, status dict)."""
    sock, version = upgrade(url, timeout=timeout)
    assert version == "v4.channel.k8s.io", version
    s = Session(sock)
    ids = {"error": s.syn_stream({"streamtype": "error"})}
    replies = set()

    def await_reply(sid):
        while sid not in replies:
            frame = s.read_frame()
            assert frame is not None, "closed before SYN_REPLY of %d" % sid
            if frame[0] == 2:
                replies.add(frame[1])

    await_reply(ids["error"])
    for kind, wanted in (("stdin", stdin is not None), ("stdout", stdout), ("stderr", stderr)):
        if wanted:
            ids[kind] = s.syn_stream({"streamtype": kind})
            await_reply(ids[kind])
    if on_open:
        on_open(s, ids)
    sender = None
    if stdin is not None:
        # Written while the output is read, as a real client does: the server applies back-pressure.
        sender = threading.Thread(target=s.data, args=(ids["stdin"], stdin, True), daemon=True)
        sender.start()
    out, err, status = bytearray(), bytearray(), bytearray()
    open_streams = {ids[k] for k in ("stdout", "stderr", "error") if k in ids}
    while open_streams:
        frame = s.read_frame()
        if frame is None:
            break
        kind, sid, flags, payload = frame
        if kind == "data":
            {ids.get("stdout"): out, ids.get("stderr"): err, ids["error"]: status}.get(sid, bytearray()).extend(payload)
            if flags & FIN:
                open_streams.discard(sid)
        elif kind == 6:
            if sid % 2 == 1:
                s.pongs.append(sid)  # the echo of ours
            else:
                s.ping(sid)  # the server's: echoed
    if sender:
        sender.join(timeout)
    s.goaway()
    sock.close()
    return bytes(out), bytes(err), json.loads(status.decode()) if status else None
