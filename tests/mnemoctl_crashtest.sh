#!/bin/sh
# mnemoctl_crashtest.sh -- mnemoctl crashtest finds the bug of
# examples/ledger (a store outside the transaction), prints a repeat
# recipe that does repeat it (quoted for sh), passes the fixed ledger (torn
# crashes too), leaves an existing pool as it was, refuses a program
# whose persist points vary, puts the pool back when stopped by a signal,
# and refuses what it cannot run.
set -eu
ctl=tools/mnemoctl
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pool=$dir/ledger.pool
# The ledger is a libtool wrapper script: crashtest runs it as it is.
ledger=examples/ledger
check="$ledger $pool --verify"

rc=0
$ctl crashtest --pool "$pool" --check "$check" -- $ledger "$pool" 3 \
	>"$dir/out" || rc=$?
cat "$dir/out"
[ "$rc" -eq 1 ]
grep -q '^crashtest: the check failed after a crash at persist point [0-9]* of [0-9]*\.$' "$dir/out"
grep -q '^broken: balance' "$dir/out"
# The recipe (the lines after "repeat it:") breaks the ledger again.
sed -n '/^repeat it:$/,/^the check printed:$/p' "$dir/out" | sed '1d;$d' >"$dir/repeat"
[ "$(wc -l <"$dir/repeat")" -eq 3 ]
rc=0
sh "$dir/repeat" >"$dir/again" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q '^broken:' "$dir/again" || { cat "$dir/again"; exit 1; }
rm -f "$pool"

out=$($ctl crashtest --pool "$pool" --check "$check" -- $ledger "$pool" --fixed 3)
echo "$out"
echo "$out" | grep -Eq '^crashtest: ([0-9]+) crash points of \1, the check passed after each$'
[ ! -e "$pool" ]   # there was none before

# A check that prints a lot is read to the end (it must not die of
# SIGPIPE and count as a failure).
out=$($ctl crashtest --max 3 --pool "$pool" --check "seq 1 30000; $check" \
	-- $ledger "$pool" --fixed 2)
echo "$out" | grep -q '^crashtest: 3 crash points of [0-9]*, the check passed after each$'

$ledger "$pool" --fixed 2 >/dev/null
sum=$(sha1sum "$pool" | cut -d' ' -f1)
out=$($ctl crashtest --tear line --seeds 2 --max 5 --pool "$pool" --check "$check" \
	-- $ledger "$pool" --fixed 3)
echo "$out"
echo "$out" | grep -q '^crashtest: 5 crash points of [0-9]* (torn), the check passed after each$'
[ "$(sha1sum "$pool" | cut -d' ' -f1)" = "$sum" ]   # put back as it was
[ -z "$(ls "$dir" | grep crashtest- || true)" ]    # and its copy removed

# The recipe is quoted for sh: a pool whose name has a space and a
# quote is found again by the recipe.
qpool="$dir/it's a ledger.pool"
qcheck="$ledger '$dir/it'\\''s a ledger.pool' --verify"
rc=0
$ctl crashtest --pool "$qpool" --check "$qcheck" -- $ledger "$qpool" 3 \
	>"$dir/out" || rc=$?
[ "$rc" -eq 1 ] || { cat "$dir/out"; exit 1; }
sed -n '/^repeat it:$/,/^the check printed:$/p' "$dir/out" | sed '1d;$d' >"$dir/repeat"
rc=0
sh "$dir/repeat" >"$dir/again" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q '^broken:' "$dir/again" || { cat "$dir/repeat" "$dir/again"; exit 1; }
rm -f "$qpool"

# A program whose persist points vary from run to run (here: fewer after
# the counting run) is not passed: the points it never reached are named,
# exit 2.
cat >"$dir/vary" <<EOF
#!/bin/sh
[ "\$MNEMO_SIM_CRASH_AT" = 0 ] && exec $ledger "\$1" --fixed 3
exec $ledger "\$1" --fixed 1
EOF
chmod +x "$dir/vary"
rc=0
$ctl crashtest --pool "$pool" --check "$check" -- "$dir/vary" "$pool" >"$dir/out" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'finished without reaching [0-9]* of the [0-9]* points' "$dir/out" ||
	{ cat "$dir/out"; exit 1; }

# SIGTERM stops it at once: the program under test is killed, the pool is
# put back as it was, no copy is left, and mnemoctl dies of the signal.
# The program says it is ready (through a fifo) before the signal.
cat >"$dir/block" <<EOF
#!/bin/sh
[ "\$MNEMO_SIM_CRASH_AT" = 0 ] && exec $ledger "\$1" --fixed 2
echo ready >"$dir/fifo"
exec tail -f /dev/null
EOF
chmod +x "$dir/block"
mkfifo "$dir/fifo"
$ledger "$pool" --fixed 2 >/dev/null
sum=$(sha1sum "$pool" | cut -d' ' -f1)
$ctl crashtest --pool "$pool" --check "$check" -- "$dir/block" "$pool" \
	>"$dir/out" 2>"$dir/err" &
pid=$!
read -r ready <"$dir/fifo"
[ "$ready" = ready ]
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 143 ] && grep -q 'stopped by signal 15' "$dir/err" || { cat "$dir/out" "$dir/err"; exit 1; }
[ "$(sha1sum "$pool" | cut -d' ' -f1)" = "$sum" ]
[ -z "$(ls "$dir" | grep crashtest- || true)" ]
rm -f "$pool"

# What it cannot run: exit 2, saying why.
rc=0; $ctl crashtest --pool "$pool" -- $ledger "$pool" 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'required' "$dir/err"
rc=0; $ctl crashtest --pool "$pool" --check true -- /bin/false 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'must succeed first' "$dir/err"
rc=0; $ctl crashtest --tear page --pool "$pool" --check true -- true 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'word or line' "$dir/err"
echo PASS
