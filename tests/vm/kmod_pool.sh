# kmod_pool.sh -- libmnemo's kmod backend (MNEMO_BACKEND=kmod) on mnemo.ko
# with a small frame budget, across module reload, pool growth through the
# module, and its fallback to the file backend when /dev/mnemo is absent.  Exits 77 (SKIP) when the module
# was not built.
# needs: tests/vm/kmod_pool
# boots: 1
. /lib/vm.sh

kmod_payload kmod_pool
ns=namespace0.0

ndctl create-namespace -f -e $ns -m fsdax >/dev/null ||
	vm_fail "ndctl create-namespace -m fsdax"
dev=/dev/$(vm_blockdev $ns)
insmod "$ko" pmem="$dev" format=1 frames=128 || vm_fail "insmod frames=128"
"$t" write /tmp/a.pool 1024 9
rmmod mnemo || vm_fail "rmmod"
insmod "$ko" pmem="$dev" frames=128 || vm_fail "reload"
"$t" verify /tmp/a.pool 1024 9 kmod
# The last pages written stay in SCM frames (never evicted): only the
# close's MNEMO_IOC_SYNC puts them in the pool file.
"$t" fill /tmp/a.pool 1024 10
# A pool grows through the module (MNEMO_IOC_RESIZE), also across evictions.
"$t" grow /tmp/g.pool 40 11
rmmod mnemo || vm_fail "rmmod"
# No module: the kmod backend falls back to the file backend, and the file
# is a full image because the last close wrote the region to it.
[ ! -e /dev/mnemo ] || vm_fail "/dev/mnemo still there"
"$t" verify /tmp/a.pool 1024 10 file
"$t" growverify /tmp/g.pool 40 11 file
if dmesg | grep -E 'BUG|WARNING|Oops|Call Trace'; then
	vm_fail "kernel log has a BUG/WARNING/Oops (above)"
fi
echo "kmod_pool: all checks passed"
