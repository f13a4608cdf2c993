#!/bin/sh
# mnemoctl.sh -- mnemoctl on the build host: usage errors exit 2 with the
# usage on stderr, help exits 0; the pool commands (create, info,
# regions, roots, stat, dump, gc, rm) on a pool tests/mnemoctl_fill filled,
# as text and as JSON parsed by python; and `devices` exits 0 with either the
# device table or the "no devices" line (the guest test tests/vm/dax.sh
# checks the table against a real emulated NVDIMM) or, built without
# libndctl, exits 2 saying so.
set -eu
ctl=tools/mnemoctl
err=$(mktemp)
dir=$(mktemp -d)
trap 'rm -f "$err"; rm -rf "$dir"' EXIT

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

# ---- pool commands ----
# py EXPR: evaluate EXPR with j = the JSON object on stdin; fails unless
# EXPR is true (a real parser: /usr/bin/python3, not a PATH shim).
py() { /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); assert $1, j"; }
pool=$dir/t.pool
expect 2 $ctl create
expect 2 $ctl create --size nonsense "$pool"
grep -q "is not a number" "$err"
expect 2 $ctl create --backend tape "$pool"
expect 2 $ctl info "$pool"                 # no such pool yet
grep -q "$pool" "$err"
$ctl create --size 8M --max 64M "$pool" | grep -q "^created $pool: 8.0 MiB"
expect 2 $ctl create "$pool"               # exists
grep -q "already exists" "$err"
./libtool --mode=execute tests/mnemoctl_fill "$pool"

$ctl info "$pool" | grep -q '^limit    64.0 MiB'
$ctl set --max 128M "$pool" | grep -q "^growth limit of $pool: 128.0 MiB"
$ctl info "$pool" | grep -q '^limit    128.0 MiB'
expect 2 $ctl set --max 32M "$pool"
grep -q "never lowered" "$err"
expect 2 $ctl set "$pool"
$ctl info --json "$pool" | py "j['path'] == '$pool' and j['size'] == 8 << 20 and j['max'] == 128 << 20 and j['format'] == '6.0' and len(j['uuid']) == 36 and j['roots'] == {'live': 2, 'slots': j['roots']['slots']} and j['regions']['live'] >= 3"
$ctl regions "$pool" | grep -Eq '^0x[0-9a-f]+ +4096  4.0 KiB +alpha$'
$ctl regions --json "$pool" | py "[r['name'] for r in j['regions']] == ['alpha', ''] or [r['name'] for r in j['regions']] == ['', 'alpha']"
$ctl regions --all --json "$pool" | py "any(r['name'].startswith('mnemo.') for r in j['regions'])"
$ctl roots --json "$pool" | py "sorted(r['name'] for r in j['roots']) == ['head', 'inside']"
$ctl stat --json "$pool" | py "j['live_blocks'] == 21 and {c['block_size']: c['blocks'] for c in j['classes']}[16] == 10 and 0 <= j['fragmentation'] < 1"
$ctl stat "$pool" | grep -q '^live           21 blocks'
$ctl dump --region alpha --length 32 "$pool" | head -n 1 |
	grep -q '^00000000  68 65 6c 6c 6f 20 66 72  6f 6d 20 72 65 67 69 6f  |hello from regio|$'
[ "$($ctl dump --root head --raw --length 14 "$pool")" = "the head block" ]
[ "$($ctl dump --root inside --raw --length 4 "$pool")" = "from" ]
expect 2 $ctl dump --root inside "$pool"   # not a heap block: needs --length
grep -q "give a --length" "$err"
expect 2 $ctl dump --region alpha --offset 5000 "$pool"
expect 2 $ctl dump --region nope "$pool"
expect 2 $ctl dump "$pool"
expect 2 $ctl info --all "$pool"           # an option of another command
grep -q -- "--all does not apply" "$err"
# 20 of mnemoctl_fill's 21 blocks are reachable from nothing.
$ctl gc --json "$pool" | py "j['reclaimed_blocks'] == 20 and j['live_blocks'] == 1"
$ctl gc "$pool" | grep -q '^reclaimed 0 blocks (0 bytes); 1 blocks live'
[ "$($ctl dump --root head --raw --length 14 "$pool")" = "the head block" ]

# check: healthy, and the file is not written; a pool whose last user
# died with committed records is recovered in memory only; a damaged
# header is a problem found (exit 1), named, and the file stays as it is.
sum() { sha1sum "$1" | cut -d' ' -f1; }
before=$(sum "$pool")
$ctl check "$pool" | grep -q "^$pool: healthy$"
$ctl check --json "$pool" | py "j['healthy'] and j['problems'] == [] and j['unreachable_blocks'] == 0"
[ "$(sum "$pool")" = "$before" ]
./libtool --mode=execute tests/mnemoctl_fill "$pool" crash
before=$(sum "$pool")
$ctl check "$pool" | grep -q "^$pool: healthy$"
[ "$(sum "$pool")" = "$before" ]
$ctl dump --region alpha --raw --offset 32 --length 23 "$pool" | grep -q '^committed, never closed$'
cp "$pool" "$dir/bad.pool"
printf 'X' | dd of="$dir/bad.pool" bs=1 seek=200 conv=notrunc 2>/dev/null
before=$(sum "$dir/bad.pool")
expect 1 $ctl check "$dir/bad.pool"
$ctl check "$dir/bad.pool" | grep -q "problem (open): .*checksum" || { $ctl check "$dir/bad.pool"; exit 1; }
$ctl check --json "$dir/bad.pool" | py "not j['healthy'] and j['problems'][0]['stage'] == 'open'"
[ "$(sum "$dir/bad.pool")" = "$before" ]
expect 2 $ctl check "$dir/missing.pool"
# A damaged region slot (the region table follows the 4 KiB header) is
# named too.
cp "$pool" "$dir/slot.pool"
printf 'X' | dd of="$dir/slot.pool" bs=1 seek=$((4096 + 40)) conv=notrunc 2>/dev/null
$ctl check "$dir/slot.pool" | grep -q 'problem (open): .*region slot 0 (offset 0x1000) checksum' ||
	{ $ctl check "$dir/slot.pool"; exit 1; }
$ctl check --json "$dir/slot.pool" | py "j['problem_count'] == 1 and 'offset 0x1000' in j['problems'][0]['what']"

# A damaged root slot (a byte of its name: the root table's offset is the
# header's root_off, at byte 64) is named with its offset too, and repair
# refuses it without writing.
cp "$pool" "$dir/root.pool"
roff=$(/usr/bin/python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(72), 64)[0])" "$pool")
printf 'X' | dd of="$dir/root.pool" bs=1 seek=$((roff + 48)) conv=notrunc 2>/dev/null
expect 1 $ctl check "$dir/root.pool"
$ctl check "$dir/root.pool" | grep -q "problem (open): .*root slot 0 (offset $(printf '%#x' "$roff")) checksum" ||
	{ $ctl check "$dir/root.pool"; exit 1; }
before=$(sum "$dir/root.pool")
expect 1 $ctl repair --no-backup "$dir/root.pool"
[ "$(sum "$dir/root.pool")" = "$before" ]

# A damaged heap page descriptor (the first data page of segment 0 holds
# mnemoctl_fill's blocks; its desc is word 1 after the 64-byte segment
# header, layout.h) is named with the page's offset; repair refuses it.
cp "$pool" "$dir/desc.pool"
off=$($ctl info --json "$pool" | /usr/bin/python3 -c "
import json, subprocess, sys
info = json.load(sys.stdin)
regs = json.loads(subprocess.check_output(['$ctl', 'regions', '--all', '--json', '$pool']))
seg = [r for r in regs['regions'] if r['name'] == 'mnemo.heap.0'][0]
s = (seg['address'] + 0xffff) & ~0xffff
print(s - info['base'])")
printf '\377' | dd of="$dir/desc.pool" bs=1 seek=$((off + 64 + 8)) conv=notrunc 2>/dev/null
page=$(printf '%#x' $((off + 65536)))
expect 1 $ctl check "$dir/desc.pool"
$ctl check "$dir/desc.pool" | grep -q "problem (open): .*heap segment 0, page 1 (offset $page): allocated blocks under an invalid" ||
	{ $ctl check "$dir/desc.pool"; exit 1; }
before=$(sum "$dir/desc.pool")
expect 1 $ctl repair --no-backup "$dir/desc.pool"
[ "$(sum "$dir/desc.pool")" = "$before" ]

# Progress: MNEMOCTL_PROGRESS=always prints each report of the library's
# long stages on stderr (mark and sweep of the collection, then the heap
# check), each from 0% to 100% in order; stdout is as without it; and
# with stderr not a terminal, the default shows nothing.
MNEMOCTL_PROGRESS=always $ctl check "$pool" 2>"$dir/progress" | grep -q "^$pool: healthy$"
/usr/bin/python3 - "$dir/progress" <<'PY'
import re, sys
stages, last = [], None
for line in open(sys.argv[1]):
    m = re.fullmatch(r"mnemoctl check: (\w+) +(\d+)% \((.*)\)\n", line)
    assert m, line
    st, pct = m.group(1), int(m.group(2))
    if not stages or stages[-1] != st:
        assert last in (None, 100) and pct == 0, (line, last)
        stages.append(st)
    else:
        assert pct >= last, line
    last = pct
assert stages == ["mark", "sweep", "check"] and last == 100, stages
PY
$ctl check "$pool" 2>"$dir/progress" >/dev/null
[ ! -s "$dir/progress" ]
MNEMOCTL_PROGRESS=always $ctl gc "$pool" 2>&1 >/dev/null | grep -q '^mnemoctl gc: sweep 100% ([0-9]* of [0-9]* pages)$'

# repair: backs up first; what an open can do it does (replay the records
# a crash left, collect leaks), then the pool is healthy; what needs a
# guess it refuses, naming it, and writes nothing.
./libtool --mode=execute tests/mnemoctl_fill "$pool" crash
before=$(sum "$pool")
$ctl repair "$pool" >"$dir/out"
cat "$dir/out"
backup=$(sed -n 's/^.*: backed up to //p' "$dir/out")
[ -f "$backup" ] && [ "$(sum "$backup")" = "$before" ]
grep -q "recovered; [0-9]* leaked blocks (.* bytes) reclaimed; healthy" "$dir/out"
$ctl check "$pool" | grep -q "^$pool: healthy$"
for bad in bad slot; do
	before=$(sum "$dir/$bad.pool")
	expect 1 $ctl repair --no-backup "$dir/$bad.pool"
	$ctl repair --no-backup "$dir/$bad.pool" | grep -q "cannot repair: .*checksum"
	[ "$(sum "$dir/$bad.pool")" = "$before" ]
done
[ -z "$(ls "$dir" | grep 'bad.pool.backup\|slot.pool.backup' || true)" ]

echo "not a pool" > "$dir/other"
expect 2 $ctl rm "$dir/other"
grep -q "not a Mnemosyne pool" "$err"
[ -f "$dir/other" ]
expect 2 $ctl info "$dir/other"
$ctl rm "$pool"
[ ! -e "$pool" ]

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
