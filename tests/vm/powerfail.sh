# Power failure on real DAX: boot 1 commits transactions (dax backend,
# MAP_SYNC) and cuts the power while they run, with no sync or umount;
# boot 2 recovers the pool and checks that every transaction reported
# committed on boot 1's console is there and that nothing else is.
# boots: 2
# needs: tests/vm/powerfail
. /lib/vm.sh
pool=/mnt/pmem/powerfail.pool
dax_mount /mnt/pmem

case $MNEMO_BOOT in
1)
	# Creating the pool is not under test: make it durable first.
	/payload/bin/powerfail create $pool
	sync
	/payload/bin/powerfail run $pool /tmp/ready &
	# Wait until it has committed (however slow the machine), let it
	# commit a while longer, then pull the plug while it still runs.
	while [ ! -e /tmp/ready ]; do
		kill -0 $! 2>/dev/null || vm_fail "powerfail run ended before its first commit"
		sleep 0.1
	done
	sleep 1
	kill -0 $! || vm_fail "powerfail run stopped before the power cut"
	vm_power_loss
	;;
2)
	# Ground truth: the last commit boot 1 printed (check-vm puts boot 1's
	# console output in /payload/prev-boot.log).
	n=$(sed -n 's/^powerfail: committed \([0-9]*\)$/\1/p' /payload/prev-boot.log | tail -n 1)
	[ -n "$n" ] || vm_fail "boot 1 reported no committed transaction"
	/payload/bin/powerfail check $pool "$n"
	;;
esac
