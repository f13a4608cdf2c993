#!/bin/sh
# preload.sh -- libmnemo-preload.so on our test programs and on real,
# unmodified programs from Debian packages.  Run by `make check` in the
# build directory (skipped in the sanitizer build: an LD_PRELOADed object
# cannot bring ASan along).
set -eu
top=$(pwd)
PL=$top/.libs/libmnemo-preload.so
export LD_LIBRARY_PATH=$top/.libs
tmp=$(mktemp -d /tmp/mnemo-preload-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export MNEMO_POOL="$tmp/p.pool" MNEMO_POOL_SIZE=256M
unset MNEMO_MALLOC MNEMO_SBRK MNEMO_FALLBACK MNEMO_PRELOAD_VERBOSE

pre() { LD_PRELOAD=$PL "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
expect() { # NAME GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
	echo "ok: $1"
}

echo "== persistent globals, neighbours, another program"
cp tests/preload/pvars1 "$tmp/prog"
expect "volatile without the interposer" "$("$tmp/prog" bump; "$tmp/prog")" \
"counter=101 text=run101 grows=8 local_x=3 removed=5 neighbours=99,98 shared_page=1
counter=100 text=initial grows=7 local_x=0 removed=5 neighbours=11,0 shared_page=1"
expect "first run" "$(pre "$tmp/prog" bump)" \
	"counter=101 text=run101 grows=8 local_x=3 removed=5 neighbours=99,98 shared_page=1"
expect "second run sees it; neighbours start fresh" "$(pre "$tmp/prog")" \
	"counter=101 text=run101 grows=8 local_x=3 removed=5 neighbours=11,0 shared_page=1"
cp tests/preload/pvars1 "$tmp/other"
expect "another program has its own" "$(pre "$tmp/other")" \
	"counter=100 text=initial grows=7 local_x=0 removed=5 neighbours=11,0 shared_page=1"

expect "exec from an interposed shell" \
	"$(pre sh -c "'$tmp/other' bump >/dev/null && exec '$tmp/other'")" \
	"counter=101 text=run101 grows=8 local_x=3 removed=5 neighbours=11,0 shared_page=1"
cp tests/preload/pvars1 "$tmp/other2"

echo "== a rebuilt program whose variables moved, killed at every step"
cp tests/preload/pvars2 "$tmp/prog"
cp "$MNEMO_POOL" "$tmp/v1.pool"
carried="counter=101 text=run101 grows=7 local_x=3 added=42 neighbours=11,0 shared_page=1"
for k in 1 2 3 4 5 none; do
	# A kill during the layout switch leaves the old layout whole (so
	# the next start carries it over and names what it cannot) or the
	# switch complete (from step 4 on: nothing left to say).
	cp "$tmp/v1.pool" "$MNEMO_POOL"
	if [ $k != none ]; then
		! MNEMO_PRELOAD_CRASH_AT=$k pre "$tmp/prog" >/dev/null 2>&1 ||
			fail "crash point $k was not reached"
	fi
	got=$(pre "$tmp/prog" 2>"$tmp/err")
	expect "carried by name and size after a kill at step $k" "$got" "$carried"
	if [ $k = none ] || [ $k -le 3 ]; then
		cat "$tmp/err"
		grep -q "'grows' changed size (2 -> 8 bytes)" "$tmp/err" ||
			fail "no size-change message"
		grep -q "'removed' is no longer in the program" "$tmp/err" ||
			fail "no removal message"
	else
		[ ! -s "$tmp/err" ] || { cat "$tmp/err"; fail "switch not complete"; }
	fi
done
expect "the new layout persists" "$(pre "$tmp/prog" bump >/dev/null; pre "$tmp/prog")" \
	"counter=102 text=run102 grows=8 local_x=6 added=42 neighbours=11,0 shared_page=1"

echo "== a dlopen'd library"
lib=$top/tests/preload/.libs/libpv.so
expect "volatile without the interposer" "$(tests/preload/pdl "$lib")" "10014 10014"
expect "first process" "$(pre tests/preload/pdl "$lib")" "10014 10024"
expect "second process" "$(pre tests/preload/pdl "$lib")" "10034 10044"

echo "== routing off: a pool opened late (by dlopen) takes free back from glibc"
late_pool() { # PROGRAM: its calls to free must reach a pool opened late
	export MNEMO_POOL="$tmp/late.pool"
	rm -f "$MNEMO_POOL"
	expect "$1: a block from malloc under MNEMO_MALLOC=all" \
		"$(MNEMO_MALLOC=all pre "$1" "$lib" keep)" "kept"
	expect "$1: realloc and free of it with routing off" \
		"$(MNEMO_PRELOAD_VERBOSE=1 pre "$1" "$lib" free 2>"$tmp/err")" "freed"
	cat "$tmp/err"
	grep -q "off: [1-9][0-9]* call slots in [1-9][0-9]* objects go straight to glibc$" \
		"$tmp/err" || fail "no call slot was bound to glibc"
	grep -q "at exit: .*, 0 blocks (0 bytes) live" "$tmp/err" ||
		fail "the block did not go back to the persistent heap"
}
(late_pool tests/preload/pdl)
(late_pool tests/preload/pdl_now)
MNEMO_PRELOAD_VERBOSE=1 MNEMO_PRELOAD_DIRECT=0 pre tests/preload/pdl "$lib" \
	>/dev/null 2>"$tmp/err"
! grep -q "straight to glibc" "$tmp/err" || fail "MNEMO_PRELOAD_DIRECT=0 ignored"
echo "ok: MNEMO_PRELOAD_DIRECT=0 keeps every call in the wrappers"

echo "== the paper's example: a flag toggled in a transaction"
expect "volatile without the interposer" "$(examples/flag; examples/flag)" "1
1"
expect "alternates across runs" "$(pre examples/flag; pre examples/flag; pre examples/flag)" "1
0
1"

echo "== plain malloc under MNEMO_MALLOC=all, reachable from a persistent root"
export MNEMO_MALLOC=all
expect "build" "$(pre tests/preload/plist add 1000)" "length=1000 count=1000"
expect "survives a clean restart" "$(pre tests/preload/plist)" "length=1000 count=1000"
expect "grows" "$(pre tests/preload/plist add 500)" "length=1500 count=1500"
expect "a fork child changes only its copy" "$(pre tests/preload/plist fork)" \
	"length=1502 count=1502
length=1500 count=1500"
expect "after the fork" "$(pre tests/preload/plist)" "length=1500 count=1500"
expect "blocks allocated inside an aborted transaction stay" \
	"$(pre tests/preload/ptx)" "intact"
unset MNEMO_MALLOC

echo "== sbrk under MNEMO_SBRK=pool"
expect "runs" "$(for i in 1 2 3; do MNEMO_SBRK=pool pre tests/preload/pbrk; done)" \
	"runs=1
runs=2
runs=3"

echo "== a pool that cannot be opened"
if MNEMO_POOL=/dev/null/x.pool pre "$tmp/other" >"$tmp/out" 2>"$tmp/err"; then
	fail "ran without its pool"
fi
grep -q "cannot open pool /dev/null/x.pool" "$tmp/err" || fail "no reason given"
expect "MNEMO_FALLBACK=volatile" \
	"$(MNEMO_FALLBACK=volatile MNEMO_POOL=/dev/null/x.pool pre "$tmp/other" 2>/dev/null)" \
	"counter=100 text=initial grows=7 local_x=0 removed=5 neighbours=11,0 shared_page=1"

echo "== nothing persistent: no pool is touched"
HOME=$tmp/home MNEMO_POOL= pre ls / >/dev/null
[ ! -e "$tmp/home" ] || fail "a pool was created for ls"
echo "ok: ls made no pool"

echo "== real programs: same output with and without the interposer"
py=/usr/bin/python3
cat >"$tmp/t.py" <<'EOF'
import json, re, threading, collections, hashlib
d = {str(i): [j * j for j in range(i % 40)] for i in range(30000)}
s = json.dumps(d, sort_keys=True)
words = collections.Counter(re.findall(r"\d\d", s))
out = []
def work(k):
    out.append(hashlib.sha256((s[k::7]).encode()).hexdigest())
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(s), words.most_common(3), sorted(out)[0])
EOF
cat >"$tmp/t.sql" <<'EOF'
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 40000)
  INSERT INTO t SELECT i, hex(i * 2654435761 % 1000003) || i, i * 1.5 FROM s;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(a), round(sum(c), 1) FROM t;
SELECT a, length(b) FROM t WHERE a % 9973 = 0 ORDER BY b LIMIT 5;
SELECT substr(b, 1, 2), count(*) FROM t GROUP BY 1 ORDER BY 2 DESC LIMIT 3;
EOF
seq 1 300000 | awk '{ print ($1 * 7919) % 300007 }' >"$tmp/in.txt"
real() { # NAME COMMAND...: compare outputs; with =all, persistent blocks were used
	name=$1; shift
	want=$("$@" | md5sum)
	for policy in off all min=256; do
		got=$(MNEMO_MALLOC=$policy MNEMO_PRELOAD_VERBOSE=1 LD_PRELOAD=$PL \
			"$@" 2>"$tmp/err" | md5sum)
		expect "$name, MNEMO_MALLOC=$policy" "$got" "$want"
		[ "$policy" = off ] && continue
		n=$(sed -n 's/.*at exit: \([0-9]*\) persistent allocations.*/\1/p' "$tmp/err")
		[ "${n:-0}" -gt 0 ] || { cat "$tmp/err"; fail "$name made no persistent allocation"; }
	done
}
real python3 "$py" "$tmp/t.py"
real sqlite3 sqlite3 :memory: ".read $tmp/t.sql"
real "sort --parallel=2" sort --parallel=2 -S 4M "$tmp/in.txt"
real "xz -T2" xz -T2 -1 -c "$tmp/in.txt"
echo "ALL PRELOAD TESTS PASSED"
