# Stage 2 of the podshim test VM: PID 1 (busybox sh) in the overlay root. Prepares the environment
# the tests expect, runs /run/vm/cmd.sh (written per run by hack/vm/run-in-vm.sh) with its stdout and
# stderr on the vm.out / vm.err virtio-serial ports, reports its exit status on vm.ret, powers off.
# The root cgroup's subtree_control is deliberately left empty: the software under test enables
# the controllers it needs.
bb=/run/vm/busybox
. /run/vm/config   # VM_EPOCH (host time at start)

$bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
$bb mkdir -p /dev/pts /dev/shm /dev/mqueue
$bb mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$bb ln -sf pts/ptmx /dev/ptmx
$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$bb mount -t mqueue mqueue /dev/mqueue
$bb ln -sf /proc/self/fd /dev/fd
$bb ln -sf /proc/self/fd/0 /dev/stdin
$bb ln -sf /proc/self/fd/1 /dev/stdout
$bb ln -sf /proc/self/fd/2 /dev/stderr
$bb mount -t tmpfs -o mode=1777 tmpfs /var/tmp
for d in debugfs:/sys/kernel/debug tracefs:/sys/kernel/tracing securityfs:/sys/kernel/security; do
  $bb mount -t "${d%%:*}" "${d%%:*}" "${d#*:}" 2>/dev/null
done
$bb chmod 1777 /tmp 2>/dev/null
$bb hostname podshim-vm
$bb ip link set lo up
# no RTC on microvm: take the host clock at launch plus the time spent booting
[ -n "$VM_EPOCH" ] && $bb date -s "@$((VM_EPOCH + $($bb cut -d. -f1 /proc/uptime)))" >/dev/null 2>&1

out=/dev/null err=/dev/null ret=/dev/null
for d in /sys/class/virtio-ports/*; do
  case "$($bb cat "$d/name" 2>/dev/null)" in
    vm.out) out=/dev/${d##*/} ;;
    vm.err) err=/dev/${d##*/} ;;
    vm.ret) ret=/dev/${d##*/} ;;
  esac
done

echo "podshim-vm: command start, uptime $($bb cut -d' ' -f1 /proc/uptime)" >/dev/console
/bin/bash /run/vm/cmd.sh </dev/null >"$out" 2>"$err"
rc=$?
echo "podshim-vm: command exit $rc, uptime $($bb cut -d' ' -f1 /proc/uptime)" >/dev/console
echo "$rc" >"$ret"
$bb sync
$bb poweroff -f
