# kmod.sh -- guest test of mnemo.ko (run by scripts/check-vm through
# scripts/vm-run; needs --nvdimm).  Payload: mnemo.ko (`make kmod`) and
# the kmod_test program.  Exits 77 (SKIP) when the module was not built.
# needs: tests/vm/kmod_test
# boots: 1
. /lib/vm.sh

kmod_payload kmod_test
ns=namespace0.0

# With slub_debug=U on the kernel command line (scripts/vm-run --append
# 'slub_debug=FZPU'), SLUB records who allocated every live object (the
# header lines of debugfs slab/*/alloc_traces): none allocated by
# mnemo_open or mnemo_region_new may outlive its fd or region.  The check
# is shown to work first: an open fd's object must be seen.
slub_allocs() {
	cat /sys/kernel/debug/slab/*/alloc_traces 2>/dev/null |
		grep -E '^ *[0-9]+ mnemo_(open|region_new)\+' || true
}
leak_check() {
	if ! grep -q 'slub_debug=[A-Z]*U' /proc/cmdline; then
		echo "note leak check not run: boot with slub_debug=U to run it"
		return 0
	fi
	[ -d /sys/kernel/debug/slab ] ||
		mount -t debugfs debugfs /sys/kernel/debug ||
		vm_fail "mount debugfs"
	exec 3</dev/mnemo
	slub_allocs | grep -q mnemo_open ||
		vm_fail "slub alloc_calls does not show an open fd's object"
	exec 3<&-
	left=$(slub_allocs)
	[ -z "$left" ] || vm_fail "mnemo objects left after $1: $left"
	echo "ok   slub: no mnemo_open/mnemo_region_new object left after $1"
}

dmesg_clean() {
	if dmesg | grep -E 'BUG|WARNING|Oops|Call Trace|general protection'; then
		vm_fail "kernel log has a BUG/WARNING/Oops (above)"
	fi
	echo "ok   dmesg: no BUG/WARNING/Oops"
}

# A raw namespace has no DAX: the module must refuse it cleanly.
if ndctl list -N -n $ns | grep -q '"mode":"raw"'; then
	if insmod "$ko" pmem=/dev/pmem0 format=1 2>/dev/null; then
		vm_fail "insmod accepted a raw (non-DAX) namespace"
	fi
	dmesg | grep -q 'mnemo: /dev/pmem0: no DAX support' ||
		vm_fail "no 'no DAX support' message for the raw namespace"
	echo "ok   raw namespace refused (no DAX support)"
	ndctl create-namespace -f -e $ns -m fsdax >/dev/null ||
		vm_fail "ndctl create-namespace -m fsdax"
fi
dev=/dev/$(vm_blockdev $ns)
[ -b "$dev" ] || vm_fail "no block device for $ns"

# Without format=1 a device with no table is refused.
dd if=/dev/zero of="$dev" bs=4096 count=1 conv=notrunc 2>/dev/null
if insmod "$ko" pmem="$dev" 2>/dev/null; then
	vm_fail "insmod used a device with no table without format=1"
fi
echo "ok   device without a table refused without format=1"

insmod "$ko" pmem="$dev" format=1 || vm_fail "insmod pmem=$dev format=1"
[ -c /dev/mnemo ] || vm_fail "/dev/mnemo missing"
modinfo "$ko" | grep -q 'parm:.*frames' || vm_fail "modinfo lists no frames parameter"
"$t" basic
"$t" badargs
"$t" deny
seed=$(date +%s)
"$t" fuzz "$seed" 20000
"$t" list | grep . && vm_fail "regions left after fuzzing (seed $seed)"
echo "ok   fuzz: 20000 random ioctls (seed $seed), table empty after"
leak_check "fuzzing"
"$t" write keep1 64 11
"$t" hold keep1 "rmmod mnemo"
rmmod mnemo || vm_fail "rmmod after unmapping"
echo "ok   unload after the last mapping went away"

# Eviction: 512 pages through 64 frames, then unload and reload.
insmod "$ko" pmem="$dev" frames=64 || vm_fail "insmod frames=64"
"$t" verify keep1 64 11
"$t" evict 512 5
"$t" hot 512
"$t" race 512
rmmod mnemo || vm_fail "rmmod"
insmod "$ko" pmem="$dev" frames=64 || vm_fail "reload"
"$t" verify keep1 64 11
"$t" verify ev 512 5
echo "ok   unload + reload: evicted and resident pages intact"
rmmod mnemo
insmod "$ko" pmem="$dev" || vm_fail "reload without budget"
"$t" verify ev 512 5
rmmod mnemo

# RAM mode: the table dies with the module, backing files keep the data.
insmod "$ko" ram_mb=4 frames=32 || vm_fail "insmod RAM mode"
"$t" write ram1 100 21
rmmod mnemo
insmod "$ko" ram_mb=4 || vm_fail "insmod RAM mode again"
"$t" keep ram1 100 21
rmmod mnemo
echo "ok   RAM mode: data kept in the backing file across reload"

dmesg_clean
echo "kmod: all checks passed"
