# shellcheck shell=sh
# vm.sh (/lib/vm.sh in the guest) -- helpers for guest test scripts
# (`. /lib/vm.sh`).
# Guest facts: the payload is at /payload (libraries in /payload/lib are on
# LD_LIBRARY_PATH), $MNEMO_BOOT is the boot index, /tmp is a tmpfs.

# Print a failure and exit (run.sh runs under sh -e; this says why).
vm_fail() {
	echo "FAIL: $*"
	exit 1
}

# Kernel-module tests: set $ko to mnemo.ko and $t to test program $1 from
# the payload; exit 77 (SKIP) when the module was not built (make kmod).
kmod_payload() {
	ko=$(find /payload -name mnemo.ko -type f | head -n 1)
	t=/payload/bin/$1
	[ -x "$t" ] || t=$(find /payload -name "$1" -type f | head -n 1)
	[ -n "$ko" ] || { echo "SKIP: no mnemo.ko in the payload (make kmod)"; exit 77; }
	[ -x "$t" ] || vm_fail "no $1 program in the payload"
}

# The block device (pmem0) of namespace $1, from ndctl's JSON.
vm_blockdev() {
	ndctl list -N -n "$1" | sed -n 's/.*"blockdev":"\([^"]*\)".*/\1/p'
}

# Make namespace ${DAX_NS:-namespace0.0} an fsdax namespace (only if it is
# raw: the mode is stored in the NVDIMM image and survives reboots), put
# ext4 on its block device if there is none yet, and mount it with -o dax
# on ${1:-/mnt/pmem}.  Fails if the kernel did not really enable DAX.
dax_mount() {
	_ns=${DAX_NS:-namespace0.0}
	_mnt=${1:-/mnt/pmem}
	ndctl list -N -n "$_ns" | grep -q '"mode":"fsdax"' ||
		ndctl create-namespace -f -e "$_ns" -m fsdax >/dev/null ||
		vm_fail "ndctl create-namespace -m fsdax on $_ns"
	_dev=/dev/$(vm_blockdev "$_ns")
	[ -b "$_dev" ] || vm_fail "$_ns has no block device ($_dev)"
	tune2fs -l "$_dev" >/dev/null 2>&1 || mkfs.ext4 -q -F "$_dev" ||
		vm_fail "mkfs.ext4 $_dev"
	mkdir -p "$_mnt"
	mount -t ext4 -o dax "$_dev" "$_mnt" || vm_fail "mount -o dax $_dev"
	grep " $_mnt ext4 .*dax" /proc/mounts >/dev/null ||
		vm_fail "$_mnt is mounted without dax: $(grep " $_mnt " /proc/mounts)"
}

# Simulated power loss: tell the host the script got here (exit status 0),
# give the serial line a moment to drain what was printed, then cut power
# with no sync and no umount.  Background work keeps running meanwhile.
vm_power_loss() {
	echo "MNEMO-VM-EXIT $(cat /etc/vm-nonce) 0"
	sleep 1
	echo o >/proc/sysrq-trigger
	sleep 60 # not reached
}
