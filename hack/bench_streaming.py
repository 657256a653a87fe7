#!/usr/bin/env python3
"""Exec and PortForward through the CRI streaming server: podshim vs containerd (Debian's 1.6), one run.

Called by hack/bench after bench_cni.py (same environment: root, the CRI venv's Python with the
generated stubs on PYTHONPATH, PODSHIM_BIN, PODSHIM_IMAGE_DIR holding busybox/rootfs, default
/var/lib/podshim/images). The two runtimes are set up exactly as bench_cni.py sets them up (its
Testbed: a node network namespace each, the same bridge conflist, containerd with a private config
under a temp dir and runc), and torn down the same way, also on failure.

Both streaming servers listen on 127.0.0.1 of their node namespace, so the client connects from a
thread that entered that namespace (setns); the CRI calls go over the unix sockets as usual. The
client is the test suite's SPDY/3.1 client (Tests/cri/spdyclient.py: upgrade, frames, header
blocks), with a frame reader that does not copy its buffer per frame and a lock around writes
(stdin is written from a second thread), the same for both runtimes.

containerd gets podshim's busybox rootfs as an image (an OCI archive of one layer, imported with
ctr: nothing is pulled). Each runtime runs one pod with two busybox containers: `sleep 3600`
(exec's target) and `httpd -f -p 8080 -h /w` serving /w/big, BENCH_STREAMING_MIB (100) MiB from
/dev/urandom whose sha256 the container computes itself. Then, alternating which runtime goes first:
  - BENCH_STREAMING_WARMUP (3) warm-ups, then BENCH_RUNS (30) execs of `true` each, timed from the
    Exec RPC to the exit status (connect, upgrade to v4.channel.k8s.io, error/stdout/stderr streams,
    status "Success" required);
  - BENCH_STREAMING_MIB MiB of random bytes through `cat` (stdin -> stdout), once each: MB/s, the
    output's sha256 must equal the input's;
  - BENCH_STREAMING_FETCHES (3) fetches each of /big through port-forward (PortForward RPC, upgrade
    to portforward.k8s.io, an error/data stream pair for port 8080, `GET /big HTTP/1.0`, timed to the
    body's last byte by Content-Length, as curl behind `kubectl port-forward` sees it; then the
    data stream is half-closed and the server's FIN awaited, untimed): MB/s best and median, the
    body's size and sha256 checked.
MB is 10^6 bytes. Prints a table and merges the figures under "streaming" into BENCH_JSON.
A runtime whose measurement fails is reported (its error under "errors") and the other one still
measured; the exit status is then 1.
"""

import ctypes
import hashlib
import os
import signal
import statistics
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no hack/__pycache__ from importing bench_cni
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cni  # noqa: E402  (also puts Tests/cri on sys.path)
from bench_cni import (RPC_TIMEOUT, BenchError, Runtime, Testbed, log, merge_json, summary,  # noqa: E402
                       warn)
from benchpeers import rootfs_image_archive  # noqa: E402
from crihelpers import all_pids, pb, proc_cmdline  # noqa: E402
import spdyclient  # noqa: E402

import grpc  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUP = int(os.environ.get("BENCH_STREAMING_WARMUP", "3"))
MIB = int(os.environ.get("BENCH_STREAMING_MIB", "100"))
FETCHES = int(os.environ.get("BENCH_STREAMING_FETCHES", "3"))
OUT = os.environ.get("BENCH_JSON", "bench.json")
IMAGE_DIR = os.environ.get("PODSHIM_IMAGE_DIR") or "/var/lib/podshim/images"
HTTP_PORT = 8080
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """user + system CPU seconds of these processes (those still there)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def in_netns(path, fn, *args):
    """fn(*args) in a new thread that entered the network namespace pinned at `path` (setns is
    per thread): a socket it creates belongs to that namespace. Returns fn's result or raises."""
    result = {}

    def body():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
            finally:
                os.close(fd)
            result["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
            result["error"] = e

    t = threading.Thread(target=body, name="netns-client")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


# ---------------------------------------------------------------------------
# The SPDY client (spdyclient's, with a cheaper reader)
# ---------------------------------------------------------------------------

class Session(spdyclient.Session):
    """spdyclient.Session with a reader that keeps an offset into one bytearray (the original
    slices its buffer per frame: quadratic for 100 MiB) and a lock around each frame written."""

    CHUNK = 65536  # the original's data frame size

    def __init__(self, sock):
        super().__init__(sock)
        self.rbuf = bytearray()
        self.rpos = 0
        self.wlock = threading.Lock()

    def control(self, ftype, flags, payload):
        with self.wlock:
            super().control(ftype, flags, payload)

    def data(self, sid, payload, fin=False):
        view = memoryview(payload)
        n = len(payload)
        i = 0
        while True:
            chunk = view[i:i + self.CHUNK]
            last = i + self.CHUNK >= n
            frame = struct.pack(">II", sid, ((spdyclient.FIN if fin and last else 0) << 24) | len(chunk)) + chunk
            with self.wlock:
                self.sock.sendall(frame)
            i += self.CHUNK
            if last:
                return

    def read_frame(self):
        buf = self.rbuf
        while True:
            p = self.rpos
            avail = len(buf) - p
            if avail >= 8:
                length = int.from_bytes(buf[p + 5:p + 8], "big")
                if avail >= 8 + length:
                    end = p + 8 + length
                    if buf[p] & 0x80:  # control: the original parses it, from exactly this frame
                        self.buffer = bytes(buf[p:end])
                        frame = spdyclient.Session.read_frame(self)
                    else:
                        with memoryview(buf) as view:
                            payload = bytes(view[p + 8:end])
                        frame = ("data", int.from_bytes(buf[p:p + 4], "big") & 0x7fffffff, buf[p + 4], payload)
                    self.rpos = end
                    if end > (1 << 20):
                        del buf[:end]
                        self.rpos = 0
                    return frame
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            buf += chunk


def spdy_exec(url, stdin=None):
    """A whole exec as spdyclient.run_exec (and client-go's v4 executor) does it: the error stream,
    then stdin/stdout/stderr, each awaiting its SYN_REPLY; stdin written while the output is read.
    Returns (stdout, stderr, status dict or None)."""
    sock, version = spdyclient.upgrade(url, timeout=120)
    try:
        if version != "v4.channel.k8s.io":
            raise BenchError("exec: negotiated %r, not v4.channel.k8s.io" % version)
        s = Session(sock)
        replies = set()

        def open_stream(kind):
            sid = s.syn_stream({"streamtype": kind})
            while sid not in replies:
                frame = s.read_frame()
                if frame is None:
                    raise BenchError("exec: connection closed before the SYN_REPLY of %s" % kind)
                if frame[0] == 2:
                    replies.add(frame[1])
            return sid

        ids = {"error": open_stream("error")}
        if stdin is not None:
            ids["stdin"] = open_stream("stdin")
        ids["stdout"] = open_stream("stdout")
        ids["stderr"] = open_stream("stderr")
        sender = None
        send_error = []
        if stdin is not None:
            def send():
                try:
                    s.data(ids["stdin"], stdin, True)
                except OSError as e:
                    send_error.append(e)
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
        out, err, status = bytearray(), bytearray(), bytearray()
        sinks = {ids["stdout"]: out, ids["stderr"]: err, ids["error"]: status}
        open_streams = set(sinks)
        while open_streams:
            frame = s.read_frame()
            if frame is None:
                break  # the server closed the connection (after the status)
            kind, sid, flags, payload = frame
            if kind == "data":
                sink = sinks.get(sid)
                if sink is not None:
                    sink.extend(payload)
                if flags & spdyclient.FIN:
                    open_streams.discard(sid)
            elif kind == 3:  # RST_STREAM
                open_streams.discard(sid)
            elif kind == 6 and sid % 2 == 0:
                s.ping(sid)  # the server's PING: echoed
        if sender:
            sender.join(120)
            if send_error:
                raise BenchError("exec: writing stdin: %s" % send_error[0])
        try:
            s.goaway()
        except OSError:
            pass
        return bytes(out), bytes(err), spdyclient.json.loads(status.decode()) if status else None
    finally:
        sock.close()


def spdy_http_get(url, port, path):
    """GET path over a forwarded connection to `port`: one error/data pair (requestid 0), the error
    stream half-closed at once as client-go does. The response is complete when Content-Length
    bytes of body are in (as curl sees it); then the data stream is half-closed and the server's FIN
    awaited (untimed: containerd 1.6, one direction done, waits up to 1 s for the other).
    Returns (response bytes, error stream bytes, perf_counter when complete)."""
    sock, version = spdyclient.upgrade(url, versions=("portforward.k8s.io",), timeout=120)
    try:
        if version != "portforward.k8s.io":
            raise BenchError("port-forward: negotiated %r" % version)
        s = Session(sock)
        headers = {"port": str(port), "requestid": "0"}
        error = s.syn_stream(dict(headers, streamtype="error"))
        s.data(error, b"", fin=True)
        data = s.syn_stream(dict(headers, streamtype="data"))
        chunks, err = [], bytearray()
        received, expected, done_at = 0, None, None
        sent = data_fin = False
        head = b""
        while not data_fin:
            frame = s.read_frame()
            if frame is None:
                if done_at is not None:
                    break
                raise BenchError("port-forward: connection closed early (%d bytes; error stream %r)" % (
                    received, bytes(err)))
            kind, sid, flags, payload = frame
            if kind == 2 and sid == data and not sent:
                s.data(data, ("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
                sent = True
            elif kind == "data" and sid == data:
                chunks.append(payload)
                received += len(payload)
                if expected is None and len(head) < 65536:
                    head += payload
                    if b"\r\n\r\n" in head:
                        header = head.split(b"\r\n\r\n", 1)[0]
                        length = [l.split(b":", 1)[1] for l in header.split(b"\r\n")
                                  if l.lower().startswith(b"content-length:")]
                        expected = len(header) + 4 + int(length[0]) if length else -1
                if done_at is None and expected is not None and expected >= 0 and received >= expected:
                    done_at = time.perf_counter()
                    s.data(data, b"", fin=True)  # the client is done: half-close
                if flags & spdyclient.FIN:
                    data_fin = True
            elif kind == "data" and sid == error:
                err.extend(payload)
            elif kind == 3 and sid == data:
                if done_at is not None:
                    break
                raise BenchError("port-forward: data stream reset (error stream: %r)" % bytes(err))
            elif kind == 6 and sid % 2 == 0:
                s.ping(sid)
        if done_at is None:  # no Content-Length: complete at the server's FIN
            done_at = time.perf_counter()
        try:
            s.goaway()
        except OSError:
            pass
        return b"".join(chunks), bytes(err), done_at
    finally:
        sock.close()


# ---------------------------------------------------------------------------
# A runtime, its pod and the measurements (the same code for both)
# ---------------------------------------------------------------------------

class StreamRuntime(Runtime):
    image = "busybox"  # containerd's: the ref imported (set below)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.pod_id = self.pod_config = self.sleeper = self.web = None
        self.big_sha256 = None
        self.exec_samples = []
        self.cat = None
        self.fetches = []
        self.server_pids = lambda: []  # the runtime's own processes (not the container's): CPU accounting

    def run_pod(self, cgroup_parent):
        name = "%s-stream" % self.name
        self.pod_config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid="%s-%s" % (cgroup_parent.split("/")[1], name),
                                           namespace=self.namespace, attempt=0),
            hostname=name, linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent))
        self.pod_id = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=self.pod_config),
                                            timeout=RPC_TIMEOUT).pod_sandbox_id
        if self.on_created:
            self.on_created(self.pod_id)
        self.sleeper = self.container("sleeper", ["sleep", "3600"])
        self.web = self.container("web", ["sh", "-c",
                                          "mkdir -p /w && head -c %d /dev/urandom > /w/big.part && "
                                          "sha256sum /w/big.part > /w/sum && mv /w/big.part /w/big && "
                                          "exec httpd -f -p %d -h /w" % (MIB << 20, HTTP_PORT)])

    def container(self, name, argv):
        config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name, attempt=0),
                                    image=pb.ImageSpec(image=self.image), command=argv)
        cid = self.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=self.pod_id, config=config,
                                                                sandbox_config=self.pod_config),
                                      timeout=RPC_TIMEOUT).container_id
        self.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=RPC_TIMEOUT)
        return cid

    def wait_web(self, timeout=120):
        """Until httpd serves /sum (the file is written, its sha256 known)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = self.rt.ExecSync(pb.ExecSyncRequest(
                container_id=self.web, cmd=["wget", "-q", "-O", "-", "http://127.0.0.1:%d/sum" % HTTP_PORT],
                timeout=10), timeout=RPC_TIMEOUT)
            if r.exit_code == 0 and r.stdout.split():
                self.big_sha256 = r.stdout.split()[0].decode()
                return
            last = (r.exit_code, r.stderr[-200:])
            time.sleep(0.3)
        raise BenchError("%s: httpd did not serve /sum in %ds (last: %s)" % (self.name, timeout, last))

    def exec_url(self, cmd, stdin):
        return self.rt.Exec(pb.ExecRequest(container_id=self.sleeper, cmd=cmd, stdin=stdin, stdout=True,
                                           stderr=True), timeout=RPC_TIMEOUT).url

    def exec_true(self, record=True):
        def run():
            start = time.perf_counter()
            out, err, status = spdy_exec(self.exec_url(["true"], False))
            took = time.perf_counter() - start
            return took, out, err, status
        took, out, err, status = in_netns(self.node.path, run)
        if not status or status.get("status") != "Success" or out or err:
            raise BenchError("%s: exec true: status %r, stdout %r, stderr %r" % (self.name, status, out[:200], err[:200]))
        if record:
            self.exec_samples.append(took)

    def exec_cat(self, data, digest):
        def run():
            pids = self.server_pids()
            cpu = cpu_seconds(pids), own_cpu_seconds()
            start = time.perf_counter()
            out, err, status = spdy_exec(self.exec_url(["cat"], True), stdin=data)
            took = time.perf_counter() - start
            cpu = cpu_seconds(pids) - cpu[0], own_cpu_seconds() - cpu[1]
            return took, out, err, status, cpu
        took, out, err, status, cpu = in_netns(self.node.path, run)
        ok = len(out) == len(data) and hashlib.sha256(out).hexdigest() == digest
        if not ok or not status or status.get("status") != "Success":
            raise BenchError("%s: cat: %d bytes back of %d, sha256 %s, status %r, stderr %r" % (
                self.name, len(out), len(data), "equal" if ok else "DIFFERENT", status, err[:200]))
        self.cat = {"seconds": took, "mb_per_s": len(data) / took / 1e6, "bytes": len(out), "sha256_equal": True,
                    "runtime_cpu_s": cpu[0], "client_cpu_s": cpu[1]}

    def fetch(self, size):
        def run():
            pids = self.server_pids()
            cpu = cpu_seconds(pids), own_cpu_seconds()
            start = time.perf_counter()
            url = self.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=self.pod_id, port=[HTTP_PORT]),
                                      timeout=RPC_TIMEOUT).url
            response, err, done_at = spdy_http_get(url, HTTP_PORT, "/big")
            cpu = cpu_seconds(pids) - cpu[0], own_cpu_seconds() - cpu[1]
            return done_at - start, response, err, cpu
        took, response, err, cpu = in_netns(self.node.path, run)
        head, _, body = response.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status_line + b" " or len(body) != size or err:
            raise BenchError("%s: port-forward GET /big: %r, %d body bytes of %d, error stream %r" % (
                self.name, status_line[:100], len(body), size, err[:300]))
        if hashlib.sha256(body).hexdigest() != self.big_sha256:
            raise BenchError("%s: port-forward GET /big: sha256 differs from the container's" % self.name)
        self.fetches.append({"seconds": took, "mb_per_s": size / took / 1e6, "runtime_cpu_s": cpu[0],
                             "client_cpu_s": cpu[1]})




# ---------------------------------------------------------------------------

def main():
    rootfs = os.path.join(IMAGE_DIR, "busybox", "rootfs")
    try:
        bench_cni.preflight()
        if not os.path.isdir(rootfs):
            raise BenchError("no busybox rootfs at %s (PODSHIM_IMAGE_DIR; hack/make-busybox-image.sh makes it)" % rootfs)
    except BenchError as e:
        print("bench_streaming: %s" % e, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench_streaming: terminated"))
    bench_cni.IMAGES = IMAGE_DIR  # podshim serve's --image-dir
    bed = Testbed("streaming")
    runtimes = bed.runtimes
    failure = None
    errors = {}
    results = None
    size = MIB << 20

    def measure(name, what, fn, *args):
        """fn(*args) unless this runtime already failed; a failure is recorded, not raised."""
        if name in errors:
            return
        try:
            fn(*args)
        except (BenchError, grpc.RpcError, OSError, AssertionError, ValueError, spdyclient.HTTPError) as e:
            if isinstance(e, grpc.RpcError):
                e = "%s: %s" % (e.code(), e.details())
            errors[name] = "%s: %s" % (what, e)
            warn("%s: %s failed, skipping its other measurements: %s" % (name, what, e))

    try:
        bed.setup(runtime_class=StreamRuntime)
        ref = "localhost/podshim-bench-busybox:" + bed.tag
        archive = os.path.join(bed.base, "busybox-image.tar")
        rootfs_image_archive(archive, rootfs, ref)
        bed.containerd.import_image(archive)
        runtimes["containerd"].image = ref
        runtimes["podshim"].server_pids = lambda: [bed.podshim.pid]
        socket_path = bed.containerd.socket
        runtimes["containerd"].server_pids = lambda: [bed.containerd.proc.pid] + [
            p for p in all_pids() if socket_path in proc_cmdline(p) and "-address" in proc_cmdline(p)]  # + its shims
        log("%s vs %s; busybox from %s (%s for containerd)" % (
            bed.versions["podshim"], bed.versions["containerd"], rootfs, ref))

        order = ["podshim", "containerd"]
        for name in order:
            measure(name, "pod and containers", runtimes[name].run_pod, bed.cgroup_parent)
        for name in order:
            measure(name, "httpd with a %d MiB file" % MIB, runtimes[name].wait_web)

        log("exec `true`: %d warm-ups, %d runs each, alternating" % (WARMUP, RUNS))
        for i in range(WARMUP):
            for name in order:
                measure(name, "exec true", runtimes[name].exec_true, False)
        for i in range(RUNS):
            for name in (order if i % 2 == 0 else order[::-1]):
                measure(name, "exec true", runtimes[name].exec_true)

        log("%d MiB through exec `cat`, once each" % MIB)
        data = os.urandom(size)
        digest = hashlib.sha256(data).hexdigest()
        for name in order:
            measure(name, "exec cat", runtimes[name].exec_cat, data, digest)
        del data

        log("port-forward: GET of the %d MiB file, %d times each, alternating" % (MIB, FETCHES))
        for i in range(FETCHES):
            for name in (order if i % 2 == 0 else order[::-1]):
                measure(name, "port-forward", runtimes[name].fetch, size)

        results = {"runs": RUNS, "warmups": WARMUP, "versions": bed.versions, "mib": MIB, "fetches": FETCHES,
                   "units": "latency in ms; throughput in MB/s, MB = 10^6 bytes",
                   "client": "Tests/cri/spdyclient.py (Python), connecting from the runtime's node namespace",
                   "exec_true": {}, "exec_cat": {}, "port_forward": {}}
        for name, r in runtimes.items():
            if len(r.exec_samples) == RUNS:  # a phase counts when complete, whatever failed later
                results["exec_true"][name] = summary(r.exec_samples)
            if r.cat:
                results["exec_cat"][name] = r.cat
            if len(r.fetches) == FETCHES:
                rates = [f["mb_per_s"] for f in r.fetches]
                results["port_forward"][name] = {
                    "best_mb_per_s": max(rates), "median_mb_per_s": statistics.median(rates), "mb_per_s": rates,
                    "bytes": size, "sha256_equal": True,
                    "runtime_cpu_s": [f["runtime_cpu_s"] for f in r.fetches],
                    "client_cpu_s": [f["client_cpu_s"] for f in r.fetches]}
        both = lambda g: "podshim" in g and "containerd" in g  # noqa: E731
        g = results["exec_true"]
        if both(g):
            g["ratio_podshim_containerd"] = {
                m: g["podshim"][m + "_ms"] / g["containerd"][m + "_ms"] for m in ("p50", "p90", "p99", "mean")}
        g = results["exec_cat"]
        if both(g):
            g["ratio_podshim_containerd"] = g["podshim"]["mb_per_s"] / g["containerd"]["mb_per_s"]
        g = results["port_forward"]
        if both(g):
            g["ratio_podshim_containerd"] = {m: g["podshim"][m + "_mb_per_s"] / g["containerd"][m + "_mb_per_s"]
                                             for m in ("best", "median")}
        if errors:
            results["errors"] = errors
    except BenchError as e:
        failure = str(e)
    except Exception as e:  # noqa: BLE001  (cleanup below, then the traceback)
        failure = "%s: %s" % (type(e).__name__, e)
        import traceback
        traceback.print_exc()
    finally:
        bed.teardown(failure or (errors and "; ".join("%s: %s" % kv for kv in errors.items())))

    if failure:
        print("bench_streaming: FAILED: %s" % failure, file=sys.stderr)
        return 1
    merge_json(OUT, "streaming", results)
    report(results)
    if errors:
        print("bench_streaming: FAILED for %s" % ", ".join("%s (%s)" % kv for kv in errors.items()), file=sys.stderr)
        return 1
    return 0


def report(results):
    na = "%9s" % "-"
    print("Streaming over SPDY/3.1 (%d runs each; Python client)" % results["runs"])
    print("%-44s %9s %9s %9s %9s" % ("exec `true`, Exec RPC -> exit status (ms)", "p50", "p90", "p99", "mean"))
    g = results["exec_true"]
    for name in ("podshim", "containerd"):
        s = g.get(name)
        print("%-44s %s" % (name, " ".join("%9.2f" % s[m + "_ms"] for m in ("p50", "p90", "p99", "mean"))
                                 if s else na))
    if "ratio_podshim_containerd" in g:
        r = g["ratio_podshim_containerd"]
        print("%-44s %s" % ("podshim/containerd", " ".join("%9.2f" % r[m] for m in ("p50", "p90", "p99", "mean"))))
    print("%-44s %9s %9s %9s" % ("%d MiB, MB/s (MB = 10^6 B)" % results["mib"], "podshim", "containerd", "ratio"))
    g = results["exec_cat"]
    cells = ["%9.1f" % g[n]["mb_per_s"] if n in g else na for n in ("podshim", "containerd")]
    ratio = "%9.2f" % g["ratio_podshim_containerd"] if "ratio_podshim_containerd" in g else na
    print("%-44s %s %s %s" % ("exec `cat`, stdin -> stdout (sha256 equal)", cells[0], cells[1], ratio))
    g = results["port_forward"]
    for m in ("best", "median"):
        cells = ["%9.1f" % g[n][m + "_mb_per_s"] if n in g else na for n in ("podshim", "containerd")]
        ratio = "%9.2f" % g["ratio_podshim_containerd"][m] if "ratio_podshim_containerd" in g else na
        print("%-44s %s %s %s" % ("port-forward GET, %s of %d" % (m, results["fetches"]), cells[0], cells[1], ratio))
    cat, fwd = results["exec_cat"], results["port_forward"]
    cpu = []
    for n in ("podshim", "containerd"):
        if n in cat:
            cpu.append("%s cat %.2f" % (n, cat[n]["runtime_cpu_s"]))
        if n in fwd:
            cpu.append("%s port-forward %s" % (n, "/".join("%.2f" % c for c in fwd[n]["runtime_cpu_s"])))
    if cpu:
        print("runtime CPU seconds per transfer (podshim: the daemon; containerd: it and its shims): " + ", ".join(cpu))
    for name, e in results.get("errors", {}).items():
        print("%s: not measured: %s" % (name, e))
    print("JSON (key \"streaming\"): %s" % OUT)


if __name__ == "__main__":
    sys.exit(main())
