"""The CRI socket: file mode, directory, peer credentials, stale sockets and a second daemon."""

import grp
import os
import socket
import stat
import subprocess
import time


from crihelpers import CRITestCase, Client, h2_version_probe, log, pb, run_as_nobody

NOBODY = 65534


def nogroup_gid():
    try:
        return grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return NOBODY


class SocketSecurityTest(CRITestCase):
    start_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Let uid 65534 traverse to the socket (temp dir only), so that refusals are the
        # daemon's doing and not a path permission.
        os.chmod(cls.base, 0o711)

    def probe_as_nobody(self, sock, gid=NOBODY):
        def child():
            verdict, detail = h2_version_probe(sock, timeout=3)
            os.write(2, ("    [child uid %d gid %d] %s: %s\n" % (os.getuid(), os.getgid(), verdict, detail[:80])).encode())
            return 1 if verdict == "answered" else 0
        return run_as_nobody(child, uid=NOBODY, gid=gid)

    def version_via(self, sock):
        c = Client(sock)
        try:
            return c.rt.Version(pb.VersionRequest(), timeout=5).runtime_name
        finally:
            c.close()

    def assert_mode(self, d):
        st = os.stat(d.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, oct(st.st_mode))
        self.assertEqual(st.st_uid, 0)
        dst = os.stat(os.path.dirname(d.socket))
        self.assertFalse(dst.st_mode & stat.S_IWOTH, "socket dir is world-writable: %s" % oct(dst.st_mode))
        return st

    def test_mode_and_root_only_by_default(self):
        sub = os.path.join(self.base, "a")
        os.mkdir(sub, 0o711)
        d = self.new_daemon(socket_path=os.path.join(sub, "run", "cri.sock"), precreate_socket_dir=False,
                            state=os.path.join(sub, "state"), root=os.path.join(sub, "root"),
                            logs=os.path.join(sub, "logs"))
        d.start()
        st = self.assert_mode(d)
        self.assertEqual(st.st_gid, 0)
        # root is allowed (our own channel); nobody is refused.
        self.assertEqual(self.version_via(d.socket), "podshim")
        # The socket dir must be traversable for the probe to mean anything.
        os.chmod(os.path.dirname(d.socket), 0o755)
        self.assertEqual(self.probe_as_nobody(d.socket), 0, "uid 65534 got an answer")
        # Even with the file mode opened up, the peer-credential check refuses nobody.
        os.chmod(d.socket, 0o666)
        try:
            self.assertEqual(self.probe_as_nobody(d.socket), 0,
                             "uid 65534 got an answer through a 0666 socket: no SO_PEERCRED check")
        finally:
            os.chmod(d.socket, 0o660)
        # The daemon is still fine.
        self.assertEqual(self.version_via(d.socket), "podshim")
        self.assertTrue(d.alive())
        d.stop()

    def test_socket_group_member_allowed(self):
        gid = nogroup_gid()
        sub = os.path.join(self.base, "b")
        os.mkdir(sub, 0o711)
        d = self.new_daemon(socket_path=os.path.join(sub, "run", "cri.sock"), socket_group="nogroup",
                            state=os.path.join(sub, "state"), root=os.path.join(sub, "root"),
                            logs=os.path.join(sub, "logs"))
        d.start()
        st = self.assert_mode(d)
        self.assertEqual(st.st_gid, gid)
        self.assertEqual(self.probe_as_nobody(d.socket, gid=gid), 1,
                         "a member of the socket group (gid %d) was refused" % gid)
        # Not in the group (gid 1 = daemon), even with the file opened up: refused.
        os.chmod(d.socket, 0o666)
        try:
            self.assertEqual(self.probe_as_nobody(d.socket, gid=1), 0, "non-member got an answer")
        finally:
            os.chmod(d.socket, 0o660)
        d.stop()

    def test_numeric_socket_group(self):
        sub = os.path.join(self.base, "n")
        os.mkdir(sub, 0o711)
        d = self.new_daemon(socket_path=os.path.join(sub, "run", "cri.sock"), socket_group=str(nogroup_gid()),
                            state=os.path.join(sub, "state"), root=os.path.join(sub, "root"),
                            logs=os.path.join(sub, "logs"))
        d.spawn()
        deadline = time.time() + 20
        while time.time() < deadline and d.alive() and not os.path.exists(d.socket):
            time.sleep(0.1)
        if not d.alive():
            # Refusing a numeric group is acceptable if the message is clear.
            self.assertNotEqual(d.proc.returncode, 0)
            self.assertIn("group", d.stderr_text().lower())
            return
        d.wait_ready()
        self.assertEqual(os.stat(d.socket).st_gid, nogroup_gid())
        d.stop()

    def test_unknown_socket_group_fails(self):
        sub = os.path.join(self.base, "u")
        os.mkdir(sub, 0o711)
        d = self.new_daemon(socket_path=os.path.join(sub, "run", "cri.sock"), socket_group="no-such-group-xyz",
                            state=os.path.join(sub, "state"), root=os.path.join(sub, "root"),
                            logs=os.path.join(sub, "logs"))
        d.spawn()
        try:
            rc = d.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("daemon with an unknown --socket-group kept running")
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such-group-xyz", d.stderr_text())

    def test_stale_socket_is_replaced(self):
        sub = os.path.join(self.base, "c")
        os.makedirs(os.path.join(sub, "run"), 0o755)
        path = os.path.join(sub, "run", "cri.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        self.assertTrue(os.path.exists(path))
        d = self.new_daemon(socket_path=path, state=os.path.join(sub, "state"), root=os.path.join(sub, "root"),
                            logs=os.path.join(sub, "logs"))
        d.start()
        self.assert_mode(d)
        d.stop()

    def test_second_daemon_on_live_socket_fails(self):
        sub = os.path.join(self.base, "d")
        os.mkdir(sub)
        first = self.new_daemon(socket_path=os.path.join(sub, "run", "cri.sock"), name="first",
                                state=os.path.join(sub, "state1"), root=os.path.join(sub, "root1"),
                                logs=os.path.join(sub, "logs1"))
        first.start()
        ino = os.stat(first.socket).st_ino
        second = self.new_daemon(socket_path=first.socket, name="second",
                                 state=os.path.join(sub, "state2"), root=os.path.join(sub, "root2"),
                                 logs=os.path.join(sub, "logs2"))
        second.spawn()
        try:
            rc = second.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("a second daemon on a live socket kept running:\n%s" % second.stderr_tail())
        self.assertNotEqual(rc, 0)
        msg = second.stderr_text()
        log("second daemon said: %s" % msg.strip()[-300:])
        self.assertTrue(first.socket in msg or "in use" in msg.lower() or "already" in msg.lower(),
                        "unclear message: %r" % msg[-500:])
        self.assertEqual(os.stat(first.socket).st_ino, ino, "the second daemon replaced the live socket")
        c = Client(first.socket)
        try:
            self.assertEqual(c.rt.Version(pb.VersionRequest(), timeout=5).runtime_name, "podshim")
        finally:
            c.close()
        self.assertTrue(first.alive())
        # Same socket *and* same state dir: also refused, first unharmed.
        third = self.new_daemon(socket_path=first.socket, name="third", state=first.state, root=first.root,
                                logs=first.logs)
        third.spawn()
        try:
            rc = third.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("a second daemon on the same socket and state dir kept running")
        self.assertNotEqual(rc, 0)
        c = Client(first.socket)
        try:
            self.assertEqual(c.rt.Version(pb.VersionRequest(), timeout=5).runtime_name, "podshim")
        finally:
            c.close()
        first.stop()


if __name__ == "__main__":
    import unittest
    unittest.main()
