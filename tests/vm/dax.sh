# Real DAX in the guest: ndctl sees the emulated NVDIMM's namespace, ext4
# mounts on it with -o dax, mnemoctl lists it, libmnemo's dax backend
# (MAP_SYNC) is chosen and works there, and is refused off DAX (tmpfs).
# needs: tests/pool_unit tests/persist_unit tests/tx_unit tests/heap_unit
# needs: tests/heap_badinput tests/heap_stress
# needs: tests/alias_unit tests/persist_kill tests/tx_kill tests/heap_kill
# needs: tests/pool_fork_unit tests/pool_grow_unit
# needs: tests/vm/backend tools/mnemoctl
. /lib/vm.sh
bin=/payload/bin

# ndctl names the namespace of the NVDIMM qemu emulates.
ndctl list -N >/tmp/ns
grep -q '"dev":"namespace0.0"' /tmp/ns || vm_fail "ndctl lists no namespace0.0: $(cat /tmp/ns)"

dax_mount /mnt/pmem
ndctl list -N -n namespace0.0 | grep -q '"mode":"fsdax"' ||
	vm_fail "namespace0.0 is not fsdax after dax_mount"

# mnemoctl devices: the namespace, its mode and block device.
$bin/mnemoctl devices >/tmp/devices
cat /tmp/devices
grep -Eq '^ndbus[0-9]+ +region[0-9]+ +namespace0\.0 +fsdax +1\.00 GiB +pmem0 ' /tmp/devices ||
	vm_fail "mnemoctl devices does not list namespace0.0 as fsdax pmem0"

# Backend choice on DAX and off it (/tmp is a tmpfs: no MAP_SYNC).
$bin/backend /mnt/pmem /tmp

# Unit, heap stress and kill -9 recovery tests with every pool on the DAX
# mount, forced to the dax backend (util.c: MNEMO_TEST_DIR,
# MNEMO_TEST_BACKEND).  The sim-backend crash tests are left out: they do
# not touch the dax backend.
export MNEMO_TEST_DIR=/mnt/pmem MNEMO_TEST_BACKEND=dax
for t in pool_unit persist_unit tx_unit heap_unit heap_badinput heap_stress \
	alias_unit persist_kill tx_kill heap_kill pool_fork_unit; do
	echo "== $t on /mnt/pmem (dax backend)"
	$bin/$t --jobs 1 || vm_fail "$t failed on the DAX mount"
done
# Growth on DAX: a pool's file is extended on the mount and the new part
# mapped with MAP_SYNC (the limit, a file that cannot grow, a file longer
# than the pool, threads while it grows; the big fills skip for want of
# room, and the crash test runs on the sim backend on the host).
echo "== pool_grow_unit on /mnt/pmem (dax backend)"
$bin/pool_grow_unit --jobs 1 --filter '*/[lfow]*' ||
	vm_fail "pool_grow_unit failed on the DAX mount"
echo "dax.sh: all checks passed"
