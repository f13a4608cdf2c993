#!/bin/sh
# examples.sh -- run the TM example twice on one pool, killing a third run
# midway, and check that the total survives and transfers accumulate.
set -eu
pool=$(mktemp -u /tmp/mnemo-tm-XXXXXX.pool)
trap 'rm -f "$pool"' EXIT
run() { ./libtool --mode=execute examples/tm_bank "$pool" "$@"; }
out1=$(run 2000)
echo "$out1"
(exec ./libtool --mode=execute examples/tm_bank "$pool" 100000000 >/dev/null) &
pid=$!
sleep 0.3
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
out2=$(run 2000)
echo "$out2"
t1=$(echo "$out1" | awk '{print $2}')
t2=$(echo "$out2" | awk '{print $2}')
echo "$out2" | grep -q 'total 800$'
[ "$t2" -gt "$t1" ]
