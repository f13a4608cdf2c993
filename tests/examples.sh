#!/bin/sh
# examples.sh -- run the TM example twice on one pool, killing a run in
# between once it has committed work (it says so: "progress transfers N"),
# and check that the total survives and no committed transfer is lost.
# Then the ordered index (mnemo::map): counts kept across runs, a scan;
# and the word counter (mnemo::unordered_map) twice on one pool: the
# counts go on.
set -eu
pool=$(mktemp -u /tmp/mnemo-tm-XXXXXX.pool)
fifo=$pool.fifo
ipool=$pool.index
words=$pool.words
trap 'rm -f "$pool" "$fifo" "$ipool" "$words"' EXIT
run() { ./libtool --mode=execute examples/tm_bank "$pool" "$@"; }
out1=$(run 2000)
echo "$out1"
mkfifo "$fifo"
(exec ./libtool --mode=execute examples/tm_bank "$pool" 100000000 >"$fifo") &
pid=$!
exec 3<"$fifo"
read -r progress <&3 || { echo "tm_bank died before its first progress line"; exit 1; }
kill -9 "$pid"
wait "$pid" 2>/dev/null && { echo "tm_bank was not killed"; exit 1; }
exec 3<&-
echo "killed after: $progress"
out2=$(run 2000)
echo "$out2"
t1=$(echo "$out1" | awk '{print $2}')
tp=$(echo "$progress" | awk '{print $3}')
t2=$(echo "$out2" | awk '{print $2}')
echo "$out2" | grep -q 'total 800$'
[ "$tp" -gt "$t1" ] && [ "$t2" -ge "$tp" ] ||
	{ echo "transfers: $t1 before, $tp committed at the kill, $t2 after"; exit 1; }

idx() { ./libtool --mode=execute examples/ordered_index "$ipool" "$@"; }
idx add pear apple fig apple >/dev/null
idx add kiwi apple >/dev/null
idx del fig >/dev/null
out=$(idx scan b z)
[ "$out" = "$(printf 'kiwi 1\npear 1\n3 words')" ] ||
	{ echo "ordered_index scan b z: $out"; exit 1; }
out=$(idx scan a b)
[ "$out" = "$(printf 'apple 3\n3 words')" ] ||
	{ echo "ordered_index scan a b: $out"; exit 1; }
echo "ordered_index: $out"

wcount() { ./libtool --mode=execute examples/wordcount "$words" "$@"; }
wcount the cat the >/dev/null
out3=$(wcount the dog "a b")
echo "$out3"
[ "$out3" = "$(printf '3 the\n1 a b\n1 cat\n1 dog\ntotal 6 in 4 words')" ] ||
	{ echo "wordcount: wrong counts after two runs"; exit 1; }
