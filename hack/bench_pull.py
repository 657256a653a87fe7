#!/usr/bin/env python3
"""PullImage from a registry: podshim vs containerd (Debian's 1.6, overlayfs), and the disk that
images sharing a base layer take, one run.

Called by hack/bench (which installs containerd, docker-registry, skopeo, apache2-utils and zstd,
builds podshim in release mode and sets up the CRI venv); runs alone too, as root, with the venv's
Python and PYTHONPATH holding the generated stubs (hack/cri-venv.sh):
    . hack/cri-venv.sh && cri_venv_setup && "$CRI_PY" hack/bench_pull.py
PODSHIM_BIN defaults to .build-release/release/podshim.

The registry is Tests/cri/registryfixture.py's TestRegistry: Debian's docker-registry (distribution
2.8) on 127.0.0.1:<free port>, TLS with the fixture's private CA, Basic authentication (alice).
The images are built here, deterministically (about a minute: seeded Zipf word-salad text and
third-random "binaries", so that gzip has real work and the unpackers many files: a tree of small
text files, medium files and a few large binaries, symlinks, a hard link; the first layers also
hold busybox), gzip level 6, pushed with skopeo:
  - bench/big:v1, BENCH_PULL_LAYERS (7) layers, about BENCH_PULL_MB (100) MB compressed (109 MB,
    193 MB uncompressed, 3319 files with the defaults);
  - bench/shared:app0..app9, a BENCH_PULL_SHARED_MB (50) MB base layer each shares plus a small
    distinct top layer (about 0.3 MB).

Both runtimes run side by side, each with private dirs under one temp dir, and are driven by the
same Python gRPC client (CRI runtime.v1 ImageService), credentials in PullImageRequest.auth:
  - `podshim serve --network none --registry-config F`, F = {"hosts": {"127.0.0.1:PORT": {"ca":
    [the fixture CA]}}, "maxConcurrentDownloads": 3};
  - containerd with a private config (root, state, temp, sockets under the temp dir; CRI plugin,
    snapshotter overlayfs, max_concurrent_downloads 3 (its default), registry config_path = a
    certs.d with 127.0.0.1:PORT/hosts.toml naming the CA). It runs no container, so no shim.

1. Disk (first, on fresh stores): the 10 shared images are pulled into each; then the allocated
   and apparent bytes (du, hard links once) of podshim's --image-dir and of containerd's root,
   with their parts (podshim: .layers and the rest; containerd: content store, overlayfs
   snapshots, metadata). Each must hold 11 layers (snapshots). Then every image is removed again
   and the stores checked empty (as below).
2. Pull time: BENCH_PULL_WARMUP (1) untimed rounds, then BENCH_PULL_RUNS (5) timed rounds,
   alternating which runtime goes first; a round is `sync`, PullImage (timed, to its reply),
   ImageStatus, the layers checked present, RemoveImage (timed), then the stores checked to hold
   nothing of the image any more, so that every pull downloads and unpacks everything:
   podshim's <image-dir>/.layers and .ingest are empty (no entry at all, hidden .tmp-/.removing-
   ones included), no image directory and no image listed; containerd's k8s.io namespace lists no
   image, no content and no snapshot (`ctr images/content/snapshots ls`), and its root holds no
   blob file, no ingest and no snapshot directory. containerd 1.6 deletes synchronously
   (images.SynchronousDelete: its GC runs before RemoveImage returns); a leftover is waited for up
   to 10 s (the wait is recorded, 0 when the store was clean at once) and fails the bench if it
   stays. The daemons' CPU time per pull is recorded too. Median and p90 are nearest-rank (with 5
   runs the p90 is the slowest run).
3. Where podshim's time goes (BENCH_PULL_BREAKDOWN=0 skips it): one `podshim images pull` of
   bench/big:v1 (the CLI: the same ImagePuller) into a fresh image dir, its progress read from a
   pseudo-terminal and time-stamped: per layer its first download progress report (0.2 s after
   the download began, or at its end if sooner), when the blob was complete and the unpack began,
   and when the layer was in the store. And the registry's
   floor: every layer blob of bench/big:v1 fetched with Python (3 at a time, as both pullers).

Prints a table and merges the figures under "pull" into BENCH_JSON (bench.json). Reports, never
asserts a goal (the issue's: PullImage podshim/containerd <= 1.2 at the median).

Everything is removed at the end, also on failure: both daemons and the CLI pull (by their own
Popen handles: SIGTERM, then SIGKILL), the registry (its fixture stops it by its handle and removes
its dir), anything mounted under the temp dir, the temp dir, and /run/containerd if containerd
created it (empty).
"""

import gzip
import io
import itertools
import json
import os
import pty
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ.setdefault("PODSHIM_BIN", os.path.join(REPO, ".build-release", "release", "podshim"))
sys.dont_write_bytecode = True  # no hack/__pycache__ from importing benchpeers
sys.path.insert(0, HERE)
import benchpeers  # noqa: E402  (also puts Tests/cri on sys.path)
from benchpeers import BenchError, log, merge_json, pct, tail, toml_str, unmount_all_under, warn  # noqa: E402
from crihelpers import Daemon, pb, pbg  # noqa: E402
import registryfixture as rf  # noqa: E402

import grpc  # noqa: E402

PODSHIM = os.environ["PODSHIM_BIN"]
CONTAINERD = benchpeers.CONTAINERD
CTR = benchpeers.CTR
RUNS = int(os.environ.get("BENCH_PULL_RUNS", "5"))
WARMUP = int(os.environ.get("BENCH_PULL_WARMUP", "1"))
BIG_MB = float(os.environ.get("BENCH_PULL_MB", "100"))
BIG_LAYERS = int(os.environ.get("BENCH_PULL_LAYERS", "7"))
SHARED_MB = float(os.environ.get("BENCH_PULL_SHARED_MB", "50"))
SHARED_IMAGES = 10
BREAKDOWN = os.environ.get("BENCH_PULL_BREAKDOWN", "1") != "0"
OUT = os.environ.get("BENCH_JSON", "bench.json")
DOWNLOADS = 3  # concurrent layer downloads, both runtimes (containerd's default; podshim's too)
RPC_TIMEOUT = 600
GC_WAIT = 10
MB = 1e6


# ---------------------------------------------------------------------------
# The images (deterministic)
# ---------------------------------------------------------------------------

class Content:
    """Seeded file contents: text of Zipf-distributed made-up words (gzip -6: about 0.35 of the
    size) and binaries a third random, two thirds such text in 4 kB pieces (about 0.58), cut
    from one 2 MB corpus so that generating 100s of MB stays fast."""

    LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
    FREQUENCIES = (12, 9, 8, 7.5, 7, 6.3, 6, 6, 4.3, 4, 2.8, 2.8, 2.4, 2.4, 2.2, 2, 2, 1.9, 1.5, 1, 0.8, 0.2, 0.2,
                   0.15, 0.1, 0.07)

    def __init__(self, seed):
        self.rng = random.Random(seed)
        letters = list(itertools.accumulate(self.FREQUENCIES))
        vocab = ["".join(self.rng.choices(self.LETTERS, cum_weights=letters, k=self.rng.randint(2, 9)))
                 for _ in range(6000)]
        zipf = list(itertools.accumulate(1 / (i + 1) for i in range(len(vocab))))
        lines = []
        size = 0
        while size < (2 << 20):
            line = " ".join(self.rng.choices(vocab, cum_weights=zipf, k=self.rng.randint(3, 14)))
            lines.append(line)
            size += len(line) + 1
        self.corpus = ("\n".join(lines) + "\n").encode()

    def text(self, n):
        out = []
        while n > 0:
            k = min(n, len(self.corpus) // 2)
            off = self.rng.randrange(len(self.corpus) - k)
            out.append(self.corpus[off:off + k])
            n -= k
        return b"".join(out)

    def binary(self, n):
        out = []
        while n > 0:
            k = min(n, 4096)
            out.append(self.rng.randbytes(k) if self.rng.random() < 1 / 3 else self.text(k))
            n -= k
        return b"".join(out)


TEXT_RATIO, BINARY_RATIO = 0.36, 0.58  # gzip -6 of Content's text and binaries, measured


def layer_entries(seed, target_compressed, prefix, large=True):
    """Entries of a layer of about `target_compressed` gzip bytes under `prefix`: directories of
    25 files each: 90% small text files (0.2-12 kB), 8.5% medium (16-192 kB, text or binary),
    1.5% large binaries (0.5-4 MB; none unless `large`); every 40th file also gets a symlink, the
    first a hard link."""
    c = Content(seed)
    rng = c.rng
    parts = prefix.split("/")
    entries = [rf.dir_entry("/".join(parts[:i])) for i in range(1, len(parts) + 1)]
    estimate = 0.0
    n = 0
    directory = None
    files = []
    while estimate < target_compressed:
        if n % 25 == 0:
            directory = "%s/d%03d" % (prefix, n // 25)
            entries.append(rf.dir_entry(directory))
        roll = rng.random()
        if roll < 0.9 or (roll >= 0.985 and not large):
            data, ratio, mode, name = c.text(int(rng.uniform(200, 12 << 10))), TEXT_RATIO, 0o644, "f%04d.txt" % n
        elif roll < 0.985:
            size = int(rng.uniform(16 << 10, 192 << 10))
            if rng.random() < 0.5:
                data, ratio, mode, name = c.text(size), TEXT_RATIO, 0o644, "m%04d.dat" % n
            else:
                data, ratio, mode, name = c.binary(size), BINARY_RATIO, 0o755, "m%04d.so" % n
        else:
            data, ratio, mode, name = c.binary(int(rng.uniform(512 << 10, 4 << 20))), BINARY_RATIO, 0o755, "b%04d.bin" % n
        path = "%s/%s" % (directory, name)
        entries.append(rf.file_entry(path, data, mode=mode))
        files.append(path)
        if n % 40 == 39:
            entries.append(rf.symlink_entry("%s/link%04d" % (directory, n), name))
        estimate += len(data) * ratio + 300  # + a tar header, roughly
        n += 1
    entries.append(rf.hardlink_entry("%s/hardlink" % prefix, files[0]))
    return entries


def build_images(layout):
    """Writes bench/big:v1's and the 10 shared images' blobs into the OCI layout `layout`;
    returns {tag: ImageInfo}."""
    share = [0.24, 0.2, 0.16, 0.14, 0.11, 0.09, 0.06]
    if BIG_LAYERS != len(share):
        share = [1.0 / BIG_LAYERS] * BIG_LAYERS
    target = BIG_MB * MB
    layers = []
    for i in range(BIG_LAYERS):
        entries = layer_entries(1000 + i, target * share[i], "usr/lib/bench-big-%d" % i)
        if i == 0:
            entries = rf.busybox_layer_entries() + entries  # a runnable image, as real ones are
        layers.append(rf.Layer(entries, "gzip"))
    images = {"big": rf.Image(layers)}
    base = rf.Layer(rf.busybox_layer_entries() + layer_entries(2000, SHARED_MB * MB, "usr/lib/bench-base"), "gzip")
    for i in range(SHARED_IMAGES):
        top = layer_entries(3000 + i, 0.3 * MB, "app", large=False)
        top.append(rf.file_entry("app/name", "app%d\n" % i))
        images["app%d" % i] = rf.Image([base, rf.Layer(top, "gzip")])
    infos = {}
    for tag, image in images.items():
        infos.update(rf.build_layout(layout, {tag: image}))  # one at a time: the big layers' bytes go early
        image.layers = []
    return infos


def count_files(layout, info):
    """Regular files in an image's layers (as their tars list them)."""
    n = raw = 0
    for digest in info.layer_digests:
        data = gzip.decompress(rf.read_blob(layout, digest))
        raw += len(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            n += sum(1 for m in t.getmembers() if m.isfile())
    return n, raw


# ---------------------------------------------------------------------------
# containerd
# ---------------------------------------------------------------------------

class Containerd(benchpeers.Containerd):
    """hack/benchpeers.py's containerd 1.6 (private config, every path under `base`) in the host's
    network namespace (it must reach the registry on 127.0.0.1), with a certs.d for the registry;
    no CNI network, no container. Adds the checks of what its stores still hold."""

    def __init__(self, base, registry):
        self.certs = os.path.join(base, "certs.d")
        os.makedirs(os.path.join(self.certs, registry.host), exist_ok=True)
        with open(os.path.join(self.certs, registry.host, "hosts.toml"), "w") as f:
            f.write('server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n'
                    '  ca = %s\n' % (registry.host, registry.host, toml_str(registry.ca_file)))
        super().__init__(base, sandbox_image="localhost/podshim-bench-pull-no-pause:none",  # never used: no pod
                         max_concurrent_downloads=DOWNLOADS, registry_config_path=self.certs)

    def snapshots(self):
        return self.ctr_rows("snapshots", "ls")

    def committed_snapshots(self):
        return [l for l in self.snapshots() if l.split()[-1] == "Committed"]

    def leftovers(self):
        """What the k8s.io namespace still lists, and what is still on disk: blob files, ingests,
        snapshot directories (the overlayfs snapshotter removes those in the GC's cleanup)."""
        content = os.path.join(self.root, "io.containerd.content.v1.content")
        return {"images": self.ctr_rows("images", "ls", "-q"), "content": self.ctr_rows("content", "ls", "-q"),
                "snapshots": self.snapshots(), "blob_files": visible(os.path.join(content, "blobs", "sha256")),
                "ingests": visible(os.path.join(content, "ingest")),
                "snapshot_dirs": visible(os.path.join(self.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots"))}


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def du(path):
    """(allocated bytes, apparent bytes) of the tree at `path`, hard links once, one file system."""
    if not os.path.exists(path):
        return 0, 0
    out = []
    for flag in ("--block-size=1", "-b"):
        r = subprocess.run(["du", "-s", "-x", flag, path], capture_output=True, text=True, check=True)
        out.append(int(r.stdout.split()[0]))
    return tuple(out)


def everything(directory):
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def visible(directory):
    try:
        return sorted(e for e in os.listdir(directory) if not e.startswith("."))
    except FileNotFoundError:
        return []


class Puller:
    """One runtime's ImageService through the same client code."""

    def __init__(self, name, socket_path, pid, auth):
        self.name = name
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.img = pbg.ImageServiceStub(self.channel)
        self.pid = pid
        self.auth = auth
        self.pull_samples, self.remove_samples, self.cpu_samples, self.gc_waits = [], [], [], []
        self.layers_present = None  # the check after the pull: a function -> count
        self.leftovers = None  # the check after RemoveImage: a function -> {what: [..]} of what is left

    def pull(self, ref):
        cpu = cpu_seconds(self.pid)
        start = time.perf_counter()
        try:
            image_ref = self.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref), auth=self.auth),
                                           timeout=RPC_TIMEOUT).image_ref
        except grpc.RpcError as e:
            raise BenchError("%s: PullImage %s: %s: %s" % (self.name, ref, e.code(), e.details()))
        return time.perf_counter() - start, cpu_seconds(self.pid) - cpu, image_ref

    def status(self, ref):
        return self.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=RPC_TIMEOUT).image

    def remove(self, ref):
        start = time.perf_counter()
        try:
            self.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)), timeout=RPC_TIMEOUT)
        except grpc.RpcError as e:
            raise BenchError("%s: RemoveImage %s: %s: %s" % (self.name, ref, e.code(), e.details()))
        return time.perf_counter() - start

    def wait_freed(self):
        """Seconds waited (beyond RemoveImage) until nothing of the removed images is left: 0 when
        nothing was left as soon as RemoveImage returned."""
        start = time.perf_counter()
        polls = 0
        while True:
            left = {k: v for k, v in self.leftovers().items() if v}
            if not left:
                return 0.0 if polls == 0 else time.perf_counter() - start
            polls += 1
            if time.perf_counter() - start > GC_WAIT:
                raise BenchError("%s: %.0f s after RemoveImage the store still holds %s" % (
                    self.name, GC_WAIT, json.dumps({k: v[:5] for k, v in left.items()})))
            time.sleep(0.05)

    def round(self, ref, image_id, layers, record=True):
        os.sync()  # the previous round's deletions and writes are not this pull's to flush
        took, cpu, image_ref = self.pull(ref)
        image = self.status(ref)
        if image.id != image_id or image_ref != image_id:
            raise BenchError("%s: pulled %s: image_ref %r, ImageStatus id %r; expected %s" % (
                self.name, ref, image_ref, image.id, image_id))
        have = self.layers_present()
        if have != layers:
            raise BenchError("%s: after pulling %s the store has %d layers, not %d" % (self.name, ref, have, layers))
        removed = self.remove(image_ref)
        waited = self.wait_freed()
        if record:
            self.pull_samples.append(took)
            self.cpu_samples.append(cpu)
            self.remove_samples.append(removed)
            self.gc_waits.append(waited)

    def close(self):
        self.channel.close()


def stats(values, unit=1.0):
    return {"median": statistics.median(values) * unit, "p90": pct(values, 90) * unit, "min": min(values) * unit,
            "max": max(values) * unit, "mean": statistics.mean(values) * unit, "runs": len(values),
            "samples": [v * unit for v in values]}


# ---------------------------------------------------------------------------
# Where podshim's time goes: `podshim images pull` on a pseudo-terminal
# ---------------------------------------------------------------------------

_ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
_LINE = re.compile(r"^([0-9a-f]{12}): (waiting|downloading|unpacking|done|already stored)")
_RESOLVED = re.compile(r"^\S+: sha256:[0-9a-f]{64} \(from ")


def podshim_cli_breakdown(base, registry_config, registry, ref, procs):
    """One `podshim images pull` into a fresh store, progress read from a pty: per layer the time
    (s, from the start) of its first "downloading", its "unpacking" and its "done"."""
    image_dir = os.path.join(base, "cli-images")
    os.makedirs(image_dir)
    master, slave = pty.openpty()
    argv = [PODSHIM, "images", "pull", "--image-dir", image_dir, "--registry-config", registry_config,
            "--creds", "%s:%s" % (registry.username, registry.password), ref]
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd="/")
    procs.append(proc)
    os.close(slave)
    seen = {}
    resolved_at = None
    buf = b""
    out = b""
    master_open = stdout_open = True
    try:
        while master_open or stdout_open:
            fds = ([master] if master_open else []) + ([proc.stdout] if stdout_open else [])
            ready = select.select(fds, [], [], 1.0)[0]
            now = time.perf_counter() - start
            if master in ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side is gone
                    chunk = b""
                if not chunk:
                    master_open = False
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = _ANSI.sub(b"", raw).replace(b"\r", b"").decode(errors="replace")
                    m = _LINE.match(line)
                    if m:
                        seen.setdefault(m.group(1), {}).setdefault(m.group(2), now)
                    elif _RESOLVED.match(line):
                        resolved_at = resolved_at or now
            if proc.stdout in ready:
                data = os.read(proc.stdout.fileno(), 65536)
                out += data
                stdout_open = bool(data)
            if now > RPC_TIMEOUT:
                raise BenchError("podshim images pull took over %d s" % RPC_TIMEOUT)
        proc.wait(60)
        total = time.perf_counter() - start
    finally:
        os.close(master)
    if proc.returncode != 0:
        raise BenchError("podshim images pull failed (%d): %s" % (proc.returncode, out.decode(errors="replace")))
    layers = {}
    for short, t in seen.items():
        entry = {k: round(v, 3) for k, v in t.items()}
        if "downloading" in t and "unpacking" in t:
            entry["download_s"] = round(t["unpacking"] - t["downloading"], 3)
        if "unpacking" in t and "done" in t:
            entry["unpack_s"] = round(t["done"] - t["unpacking"], 3)
        layers[short] = entry
    listed = min((t["waiting"] for t in seen.values() if "waiting" in t), default=None)
    return {"total_s": total, "resolved_at_s": resolved_at, "layers_listed_at_s": listed,
            "last_done_at_s": max((t["done"] for t in seen.values() if "done" in t), default=None),
            "unpack_s_sum": sum(e.get("unpack_s", 0) for e in layers.values()),
            "download_s_sum_lower_bound": sum(e.get("download_s", 0) for e in layers.values()),
            "layers": layers,
            "note": "a layer's first 'downloading' report comes 0.2 s after its download started, or at its end if "
                    "sooner; 'unpacking' is reported when the blob is complete, 'done' when the layer is in the store "
                    "(after syncfs and rename). Each of the 3 download slots holds a layer through its unpack."}


def registry_floor(registry, repo, info):
    """Seconds to GET every layer blob of `info` with Python, DOWNLOADS at a time (bytes discarded)."""
    pending = list(info.layer_digests)
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                digest = pending.pop(0)
            r = registry.request("GET", "/v2/%s/blobs/%s" % (repo, digest), timeout=300)
            if r.status != 200:
                errors.append("%s: %d" % (digest, r.status))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(DOWNLOADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError("registry floor: %s" % errors)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------

def preflight():
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root")
    for path in (PODSHIM, CONTAINERD, CTR, rf.REGISTRY_BIN, rf.SKOPEO_BIN, rf.HTPASSWD_BIN, rf.OPENSSL_BIN,
                 rf.BUSYBOX_BIN):
        if not os.access(path, os.X_OK):
            problems.append("missing %s" % path)
    if problems:
        raise BenchError("; ".join(problems) + " (hack/bench installs containerd, docker-registry, skopeo, "
                         "apache2-utils, zstd and busybox-static)")


def main():
    try:
        preflight()
    except BenchError as e:
        print("bench_pull: %s" % e, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench_pull: terminated"))
    base = tempfile.mkdtemp(prefix="podshim-bench-pull-", dir="/tmp")
    os.chmod(base, 0o711)
    run_created = not os.path.exists("/run/containerd")
    registry = podshim = containerd = None
    pullers = {}
    procs = []  # the CLI pull
    failure = None
    results = None
    try:
        # The registry and the images.
        registry = rf.TestRegistry(auth="basic").start()
        layout = os.path.join(base, "layout")
        start = time.perf_counter()
        infos = build_images(layout)
        big = infos["big"]
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        push(registry, layout, "big", "bench/big:v1")
        for i in range(SHARED_IMAGES):
            push(registry, layout, "app%d" % i, "bench/shared:app%d" % i)
        push_s = time.perf_counter() - start
        files, raw = count_files(layout, big)
        big_ref = "%s/bench/big:v1" % registry.host
        shared = [("%s/bench/shared:app%d" % (registry.host, i), infos["app%d" % i]) for i in range(SHARED_IMAGES)]
        base_size = infos["app0"].layer_sizes[0]
        top_sizes = [info.layer_sizes[1] for _, info in shared]
        log("registry %s (docker-registry, TLS, Basic auth); images built in %.1f s, pushed in %.1f s" % (
            registry.host, build_s, push_s))
        log("bench/big:v1: %d layers, %.1f MB compressed (%s), %.1f MB uncompressed, %d files" % (
            len(big.layer_sizes), sum(big.layer_sizes) / MB, ", ".join("%.1f" % (s / MB) for s in big.layer_sizes),
            raw / MB, files))

        # The runtimes.
        registry_config = os.path.join(base, "podshim-registry.json")
        with open(registry_config, "w") as f:
            json.dump({"hosts": {registry.host: {"ca": [registry.ca_file]}}, "maxConcurrentDownloads": DOWNLOADS}, f)
        image_dir = os.path.join(base, "podshim", "images")
        os.makedirs(image_dir)
        podshim = Daemon(os.path.join(base, "podshim"), name="podshim", image_dir=image_dir,
                         extra_args=["--registry-config", registry_config])
        podshim.start()
        containerd = Containerd(os.path.join(base, "containerd"), registry)
        containerd.start()
        auth = pb.AuthConfig(username=registry.username, password=registry.password)
        p = pullers["podshim"] = Puller("podshim", podshim.socket, podshim.pid, auth)
        layers_dir = os.path.join(image_dir, ".layers")
        p.layers_present = lambda: len(visible(layers_dir))
        p.leftovers = lambda: {
            "layers": everything(layers_dir),  # .tmp-* and .removing-* too
            "ingest": everything(os.path.join(image_dir, ".ingest")),
            "image_dirs": [e for e in everything(image_dir) if not e.startswith(".") or e.startswith((".removing-", ".staging-"))],
            "images": [i.id for i in p.img.ListImages(pb.ListImagesRequest(), timeout=60).images]}
        c = pullers["containerd"] = Puller("containerd", containerd.socket, containerd.proc.pid, auth)
        c.layers_present = lambda: len(containerd.committed_snapshots())
        c.leftovers = containerd.leftovers
        versions = {}
        for name, sock in (("podshim", podshim.socket), ("containerd", containerd.socket)):
            ch = grpc.insecure_channel("unix://" + sock)
            try:
                v = pbg.RuntimeServiceStub(ch).Version(pb.VersionRequest(version="v1"), timeout=30)
                versions[name] = "%s %s" % (v.runtime_name, v.runtime_version)
            finally:
                ch.close()
        log("%s (%s) vs %s; %d concurrent downloads each" % (versions["podshim"], PODSHIM, versions["containerd"],
                                                             DOWNLOADS))

        # 1. Disk: the 10 images sharing a base, on fresh stores.
        log("disk: pulling the %d images that share a %.1f MB base layer into each" % (SHARED_IMAGES, base_size / MB))
        order = ["podshim", "containerd"]
        baseline = {"podshim": du(image_dir), "containerd": du(containerd.root)}
        shared_pull_s = {}
        for name in order:
            start = time.perf_counter()
            for ref, info in shared:
                _, _, image_ref = pullers[name].pull(ref)
                if image_ref != info.config_digest:
                    raise BenchError("%s: %s pulled as %s, not %s" % (name, ref, image_ref, info.config_digest))
            shared_pull_s[name] = time.perf_counter() - start
            have = pullers[name].layers_present()
            if have != SHARED_IMAGES + 1:
                raise BenchError("%s: %d layers after pulling the shared images, not %d" % (name, have, SHARED_IMAGES + 1))
        os.sync()
        croot = containerd.root
        disk = {
            "podshim": {"total": du(image_dir), "layers": du(layers_dir), "baseline": baseline["podshim"]},
            "containerd": {"total": du(croot), "baseline": baseline["containerd"],
                           "content": du(os.path.join(croot, "io.containerd.content.v1.content")),
                           "snapshots": du(os.path.join(croot, "io.containerd.snapshotter.v1.overlayfs")),
                           "metadata": du(os.path.join(croot, "io.containerd.metadata.v1.bolt"))},
        }
        for name in order:
            for ref, info in shared:
                pullers[name].remove(info.config_digest)
            pullers[name].wait_freed()

        # 2. Pull time.
        log("PullImage %s: %d warm-up and %d timed rounds each, alternating, RemoveImage and a check that "
            "the store is empty between rounds" % (big_ref, WARMUP, RUNS))
        for i in range(WARMUP + RUNS):
            for name in (order if i % 2 == 0 else order[::-1]):
                pullers[name].round(big_ref, big.config_digest, len(big.layer_digests), record=i >= WARMUP)
            if i >= WARMUP:
                log("round %d: podshim %.2f s, containerd %.2f s" % (
                    i - WARMUP + 1, p.pull_samples[-1], c.pull_samples[-1]))

        # 3. Where podshim's time goes.
        breakdown = floor = None
        if BREAKDOWN:
            log("podshim images pull %s on a pty (where the time goes); the registry's floor" % big_ref)
            breakdown = podshim_cli_breakdown(base, registry_config, registry, big_ref, procs)
            names = {d.split(":", 1)[1][:12]: (d, s) for d, s in zip(big.layer_digests, big.layer_sizes)}
            for short, entry in breakdown["layers"].items():
                if short in names:
                    entry["compressed_bytes"] = names[short][1]
            floor = registry_floor(registry, "bench/big", big)

        results = {
            "versions": versions, "podshim_bin": PODSHIM, "runs": RUNS, "warmups": WARMUP,
            "concurrent_downloads": DOWNLOADS,
            "registry": "docker-registry (distribution 2.8) on 127.0.0.1, TLS (private CA), Basic auth",
            "units": "seconds; bytes; MB = 10^6 bytes",
            "image": {"ref": "bench/big:v1", "layers": len(big.layer_sizes), "compressed_bytes": sum(big.layer_sizes),
                      "layer_compressed_bytes": big.layer_sizes, "uncompressed_bytes": raw, "files": files,
                      "compression": "gzip -6"},
            "pull_image": {n: stats(r.pull_samples) for n, r in pullers.items()},
            "remove_image": {n: stats(r.remove_samples) for n, r in pullers.items()},
            "daemon_cpu_per_pull_s": {n: stats(r.cpu_samples) for n, r in pullers.items()},
            "store_freed_after_remove": {n: {"checked": True, "extra_wait_s": r.gc_waits} for n, r in pullers.items()},
            "shared_disk": {
                "images": SHARED_IMAGES, "base_layer_compressed_bytes": base_size, "top_layer_compressed_bytes": top_sizes,
                "pull_all_s": shared_pull_s,
                "podshim": {k: {"allocated": v[0], "apparent": v[1]} for k, v in disk["podshim"].items()},
                "containerd": {k: {"allocated": v[0], "apparent": v[1]} for k, v in disk["containerd"].items()},
            },
        }
        pi = results["pull_image"]
        pi["ratio_podshim_containerd"] = {m: pi["podshim"][m] / pi["containerd"][m] for m in ("median", "p90", "mean")}
        sd = results["shared_disk"]
        sd["ratio_podshim_containerd_allocated"] = sd["podshim"]["total"]["allocated"] / sd["containerd"]["total"]["allocated"]
        if breakdown:
            results["podshim_cli_breakdown"] = breakdown
            results["registry_floor_s"] = floor
        goal = pi["ratio_podshim_containerd"]["median"]
        results["goal"] = {"goal": "PullImage median podshim/containerd <= 1.2", "value": goal, "met": goal <= 1.2}
    except BenchError as e:
        failure = str(e)
    except Exception as e:  # noqa: BLE001  (cleanup below, then the traceback)
        failure = "%s: %s" % (type(e).__name__, e)
        import traceback
        traceback.print_exc()
    finally:
        teardown(base, registry, podshim, containerd, pullers, procs, run_created, failure)

    if failure:
        print("bench_pull: FAILED: %s" % failure, file=sys.stderr)
        return 1
    merge_json(OUT, "pull", results)
    report(results)
    return 0


def push(registry, layout, tag, dest):
    try:
        rf.push(registry, layout, tag, dest, timeout=600)
    except rf.RegistryError as e:
        raise BenchError(str(e))


def teardown(base, registry, podshim, containerd, pullers, procs, run_created, failure):
    for p in pullers.values():
        p.close()
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
    if podshim is not None:
        podshim.stop()
        if failure:
            sys.stderr.write("podshim log:\n%s\n" % podshim.stderr_tail())
    if containerd is not None:
        containerd.stop()
        if failure:
            sys.stderr.write("containerd log:\n%s\n" % tail(containerd.log_path))
    if registry is not None:
        if failure:
            sys.stderr.write("registry log:\n%s\n" % registry.log_tail())
        registry.stop()
    still = unmount_all_under(base)
    if still:
        warn("still mounted under %s: %s; not removing it" % (base, still))
    else:
        subprocess.run(["rm", "-rf", "--one-file-system", base])
    if run_created:
        for d in ("/run/containerd/s", "/run/containerd"):
            try:
                os.rmdir(d)
            except OSError:
                pass


def report(results):
    img = results["image"]
    print("PullImage from a local registry (%s), %s: %d layers, %.1f MB compressed, %.1f MB uncompressed, %d files;"
          % (results["registry"], img["ref"], img["layers"], img["compressed_bytes"] / MB, img["uncompressed_bytes"] / MB,
             img["files"]))
    print("%d timed rounds each after %d warm-up, RemoveImage between rounds (stores checked empty), %d downloads at once"
          % (results["runs"], results["warmups"], results["concurrent_downloads"]))
    print("%-40s %10s %10s %8s" % ("(seconds)", "podshim", "containerd", "ratio"))
    pi = results["pull_image"]
    for m in ("median", "p90", "mean", "min", "max"):
        r = pi["ratio_podshim_containerd"].get(m)
        print("%-40s %10.2f %10.2f %8s" % ("PullImage " + m, pi["podshim"][m], pi["containerd"][m],
                                           "%.2f" % r if r is not None else ""))
    for key, label in (("daemon_cpu_per_pull_s", "daemon CPU per pull, median"), ("remove_image", "RemoveImage median")):
        g = results[key]
        print("%-40s %10.2f %10.2f %8.2f" % (label, g["podshim"]["median"], g["containerd"]["median"],
                                             g["podshim"]["median"] / max(g["containerd"]["median"], 1e-9)))
    mbps = {n: img["compressed_bytes"] / MB / pi[n]["median"] for n in ("podshim", "containerd")}
    print("%-40s %10.1f %10.1f" % ("compressed MB/s at the median", mbps["podshim"], mbps["containerd"]))
    g = results["goal"]
    print("goal %s: measured %.2f, %s" % (g["goal"], g["value"], "met" if g["met"] else "NOT met"))

    sd = results["shared_disk"]
    print("Disk after pulling %d images sharing a %.1f MB base layer (+ %.2f MB distinct top layer each, compressed):"
          % (sd["images"], sd["base_layer_compressed_bytes"] / MB,
             statistics.mean(sd["top_layer_compressed_bytes"]) / MB))
    print("%-40s %10s %10s %8s" % ("(MB allocated / apparent)", "podshim", "containerd", "ratio"))

    def cell(d):
        return "%6.1f/%-6.1f" % (d["allocated"] / MB, d["apparent"] / MB) if d else "%13s" % "-"
    ps, cs = sd["podshim"], sd["containerd"]
    print("%-40s %s %s %8.2f" % ("total (image dir / root)", cell(ps["total"]), cell(cs["total"]),
                                 sd["ratio_podshim_containerd_allocated"]))
    print("%-40s %s %s" % ("  unpacked layers (.layers / snapshots)", cell(ps["layers"]), cell(cs["snapshots"])))
    print("%-40s %s %s" % ("  compressed blobs (content store)", cell(None), cell(cs["content"])))
    print("%-40s %s %s" % ("  metadata (bolt)", cell(None), cell(cs["metadata"])))
    print("%-40s %s %s" % ("  before the pulls (empty store)", cell(ps["baseline"]), cell(cs["baseline"])))
    print("%-40s %10.2f %10.2f" % ("pulling the %d images took (s)" % sd["images"], sd["pull_all_s"]["podshim"],
                                   sd["pull_all_s"]["containerd"]))
    b = results.get("podshim_cli_breakdown")
    if b:
        print("podshim images pull of %s (CLI, pty progress; s from start): total %.2f; registry floor (Python GET of "
              "all layer blobs, %d at a time) %.2f" % (img["ref"], b["total_s"], results["concurrent_downloads"],
                                                        results["registry_floor_s"]))
        print("  resolved at %.2f, layers listed at %.2f, last layer done at %.2f; unpack phases sum %.2f s, download "
              "phases sum >= %.2f s" % (b["resolved_at_s"] or -1, b["layers_listed_at_s"] or -1, b["last_done_at_s"] or -1,
                                        b["unpack_s_sum"], b["download_s_sum_lower_bound"]))
        print("  %-14s %8s %10s %10s %10s %10s %10s" % ("layer", "MB", "1st dl rpt", "unpack at", "done at",
                                                       "download>=", "unpack"))
        for short, e in sorted(b["layers"].items(), key=lambda kv: kv[1].get("downloading", 0)):
            def f(k):
                return "%10.2f" % e[k] if k in e else "%10s" % "-"
            print("  %-14s %8.1f %s %s %s %s %s" % (short, e.get("compressed_bytes", 0) / MB, f("downloading"),
                                                     f("unpacking"), f("done"), f("download_s"), f("unpack_s")))
    print("JSON (key \"pull\"): %s" % OUT)


if __name__ == "__main__":
    sys.exit(main())
