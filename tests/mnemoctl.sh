#!/bin/sh
# mnemoctl.sh -- mnemoctl on the build host: usage errors exit 2 with the
# usage on stderr, help exits 0, and `devices` exits 0 with either the
# device table or the "no devices" line (the guest test tests/vm/dax.sh
# checks the table against a real emulated NVDIMM) or, built without
# libndctl, exits 2 saying so.
set -eu
ctl=tools/mnemoctl
err=$(mktemp)
trap 'rm -f "$err"' EXIT

# expect STATUS CMD...: CMD exits STATUS.
expect() {
	want=$1
	shift
	rc=0
	"$@" >/dev/null 2>"$err" || rc=$?
	[ "$rc" -eq "$want" ] || { echo "FAIL: $* exited $rc, not $want"; cat "$err"; exit 1; }
}
expect 2 $ctl
grep -q '^usage: mnemoctl' "$err"
expect 2 $ctl no-such-command
grep -q "unknown command 'no-such-command'" "$err"
expect 2 $ctl devices extra
grep -q 'takes no arguments' "$err"
expect 0 $ctl help
expect 0 $ctl --help
$ctl help | grep -q '^  devices '

# Built without libndctl (MNEMO_HAVE_NDCTL=no, from configure): devices
# says so and exits 2.
if [ "${MNEMO_HAVE_NDCTL:-yes}" = no ]; then
	expect 2 $ctl devices
	grep -q '^mnemoctl devices: built without libndctl' "$err"
	exit 0
fi
out=$($ctl devices)
echo "$out"
if [ -d /sys/bus/nd/devices ] && ls /sys/bus/nd/devices | grep -q '^region'; then
	echo "$out" | head -n 1 | grep -q '^BUS  *REGION  *NAMESPACE  *MODE'
	echo "$out" | grep -Eq '^ndbus[0-9]+ +region[0-9]+ '
else
	[ "$out" = "no persistent-memory devices (no NVDIMM regions in /sys/bus/nd)" ]
fi
