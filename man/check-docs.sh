#!/bin/sh
# check-docs.sh -- every exported symbol of libmnemo has a man page
# (man/<symbol>.3), and every section 3 page has an ERRORS section (a
# ".so man3/<page>.3" link page counts if its target has one).  Pages
# for symbols the library does not export fail too.  The GCC TM ABI
# (symbols _ITM_* and _ZGTt*) is documented as a whole by
# mnemosyne-tm.7, which must exist; pages whose name is not a C
# identifier (mnemosyne-cxx.3) document no single symbol and are exempt
# from the export check.
#
# Usage: check-docs.sh [<libmnemo.so> [<mandir>]]
# Defaults: $MNEMO_LIB, else .libs/libmnemo.so (relative to the current
# directory, the build directory under "make check"); $MNEMO_MANDIR, else
# the directory of this script.  Exit 0 ok, 1 doc errors, 77 skip (no nm),
# 99 hard error (no library).
set -u

lib=${1:-${MNEMO_LIB:-.libs/libmnemo.so}}
mandir=${2:-${MNEMO_MANDIR:-$(dirname "$0")}}

if ! command -v nm >/dev/null 2>&1; then
	echo "check-docs: nm not found; skipping" >&2
	exit 77
fi
if [ ! -f "$lib" ]; then
	echo "check-docs: $lib: no such library (set MNEMO_LIB or pass it)" >&2
	exit 99
fi
if [ ! -d "$mandir" ]; then
	echo "check-docs: $mandir: no such directory" >&2
	exit 99
fi

# Defined dynamic symbols without version suffixes; version nodes are
# absolute ("A") symbols and are left out.
syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
if [ -z "$syms" ]; then
	echo "check-docs: $lib exports no symbols?" >&2
	exit 99
fi

status=0
tm_page="$mandir/mnemosyne-tm.7"
tm_count=0

for s in $syms; do
	case $s in
	_ITM_* | _ZGTt*)
		tm_count=$((tm_count + 1))
		continue
		;;
	esac
	if [ ! -f "$mandir/$s.3" ]; then
		echo "check-docs: exported symbol $s has no man page $mandir/$s.3"
		status=1
	fi
done
if [ "$tm_count" -gt 0 ] && [ ! -f "$tm_page" ]; then
	echo "check-docs: $lib exports $tm_count GCC TM ABI symbols (_ITM_*, _ZGTt*) but $tm_page does not exist"
	status=1
fi

has_errors() {
	grep -q '^\.SH[ 	]*"*ERRORS"*[ 	]*$' "$1"
}

for page in "$mandir"/*.3; do
	[ -e "$page" ] || continue
	name=$(basename "$page" .3)
	case $name in
	*[!A-Za-z0-9_]* | [0-9]*) ;; # not a symbol name: no export check
	*)
		if ! printf '%s\n' "$syms" | grep -qx "$name"; then
			echo "check-docs: $page documents $name, which $lib does not export"
			status=1
		fi
		;;
	esac
	target=$(sed -n 's/^\.so[ 	][ 	]*//p' "$page" | head -n 1)
	if [ -n "$target" ]; then
		t="$mandir/$(basename "$target")"
		if [ ! -f "$t" ]; then
			echo "check-docs: $page links to $target, which does not exist"
			status=1
		elif ! has_errors "$t"; then
			echo "check-docs: $page links to $t, which has no ERRORS section"
			status=1
		fi
	elif ! has_errors "$page"; then
		echo "check-docs: $page has no ERRORS section"
		status=1
	fi
done

if [ "$status" -eq 0 ]; then
	n=$(printf '%s\n' "$syms" | wc -l)
	echo "check-docs: all $n exported symbols documented ($tm_count GCC TM ABI symbols by mnemosyne-tm.7), every page has ERRORS"
fi
exit "$status"
