# kmod_reboot.sh -- mnemo.ko's region table and SCM-resident pages survive
# a power cut (no rmmod, no sync) and a reboot on the same NVDIMM image.
# Only pages in SCM are checked: backing files live on the guest's tmpfs,
# which a reboot empties.  Exits 77 (SKIP) when the module was not built.
# needs: tests/vm/kmod_test
# boots: 2
. /lib/vm.sh

kmod_payload kmod_test
ns=namespace0.0

case $MNEMO_BOOT in
1)
	ndctl create-namespace -f -e $ns -m fsdax >/dev/null ||
		vm_fail "ndctl create-namespace -m fsdax"
	dev=/dev/$(vm_blockdev $ns)
	insmod "$ko" pmem="$dev" format=1 || vm_fail "insmod format=1"
	"$t" pin kept 40 3
	"$t" pin small 8 4
	"$t" pin z0 8 5
	"$t" delete z0
	"$t" list | grep -q "^region z0 " && vm_fail "z0 not deleted"
	"$t" list
	vm_power_loss
	;;
2)
	dev=/dev/$(vm_blockdev $ns)
	insmod "$ko" pmem="$dev" || vm_fail "insmod after the power cut"
	"$t" list | tee /tmp/list
	grep -q "^region kept size 163840 resident 40 uid 0 mode 600" /tmp/list ||
		vm_fail "region kept missing or changed"
	grep -q "^region small size 32768 resident 8 " /tmp/list ||
		vm_fail "region small missing"
	grep -q "^region z0 " /tmp/list && vm_fail "deleted region z0 came back"
	"$t" verify kept 40 3
	"$t" verify small 8 4
	if dmesg | grep -E 'BUG|WARNING|Oops|Call Trace'; then
		vm_fail "kernel log has a BUG/WARNING/Oops (above)"
	fi
	echo "kmod_reboot: table and SCM pages survived the power cut"
	;;
esac
