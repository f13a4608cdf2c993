#!/bin/sh
# preload_tree.sh -- libmnemo-preload.so on process trees: programs that
# fork, exec, pipe and run several instances of one program at once.  Run
# by `make check` in the build directory (skipped in the sanitizer build).
#
# What is checked (libmnemo-preload(7)): a fork child gets a snapshot of
# pool memory at the fork, can allocate, free, exec and exit, keeps its
# file descriptors, and writes nothing into the pool; a process that only
# routes malloc never stops because its pool is busy (it falls back to its
# per-program pool, then to further instance pools, then to volatile
# memory).  So every case below must print the same stdout and exit with
# the same status with the interposer as without it, under
# MNEMO_MALLOC=all and min=256, with $MNEMO_POOL unset (per-program pools)
# and set (one pool for the whole tree).  Programs are named by /usr/bin
# paths and PATH is /usr/bin:/bin, so that a user's shims (pyenv) hide
# nothing; one case goes through such a shim on purpose.
#
# A failing case does not stop the others; the summary names them all.
# Every program runs under timeout(1) (generous, only to end a hang).
set -eu
top=$(pwd)
PL=$top/.libs/libmnemo-preload.so
export LD_LIBRARY_PATH=$top/.libs
export PATH=/usr/bin:/bin
for p in bash gcc make git python3 sqlite3 xz tar gzip timeout; do
	[ -x /usr/bin/$p ] || { echo "preload_tree.sh: /usr/bin/$p missing (scripts/setup)"; exit 1; }
done
tmp=$(mktemp -d /tmp/mnemo-tree-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
export HOME="$tmp/home"
mkdir "$HOME"
unset XDG_DATA_HOME MNEMO_POOL MNEMO_POOL_SIZE MNEMO_MALLOC MNEMO_SBRK \
	MNEMO_FALLBACK MNEMO_PRELOAD_VERBOSE MNEMO_PRELOAD_DIRECT \
	MNEMO_HEAP_GC MNEMO_DURABILITY
limit=60 # seconds; each run takes a few at most

failed=""
fail() { echo "FAIL: $*"; failed="$failed
	$1"; }
expect() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then echo "ok: $1"; else fail "$1" "got '$2', want '$3'"; fi
}

# x PROGRAM ARGS...: run one program in the current configuration ($mode
# empty: without the interposer).  Only PROGRAM gets LD_PRELOAD from here;
# what it runs inherits it.
x() {
	if [ -n "$mode" ]; then
		/usr/bin/timeout -k 5 $limit /usr/bin/env LD_PRELOAD="$PL" \
			MNEMO_MALLOC="$mode" "$@"
	else
		/usr/bin/timeout -k 5 $limit "$@"
	fi
}

# run MODE POOL FUNCTION: FUNCTION's stdout in $tmp/out, stderr in
# $tmp/err, status in $st.
run() {
	st=0
	(
		mode=$1
		[ "$2" = unset ] || export MNEMO_POOL="$tmp/tree.pool"
		$3
	) </dev/null >"$tmp/out" 2>"$tmp/err" || st=$?
}

# case_ NAME FUNCTION [WANT]: FUNCTION without the interposer (its output
# must be WANT if given), then in each configuration: same stdout, same
# status.
case_() {
	name=$1
	run "" unset "$2"
	mv "$tmp/out" "$tmp/want"
	want_st=$st
	[ $# -lt 3 ] || expect "$name without the interposer (status $st)" \
		"$(cat "$tmp/want")" "$3"
	for pool in unset set; do
		for m in all min=256; do
			c="$name [MNEMO_MALLOC=$m, MNEMO_POOL $pool]"
			run "$m" "$pool" "$2"
			why=""
			[ "$st" = "$want_st" ] || why="exit status $st, want $want_st"
			cmp -s "$tmp/out" "$tmp/want" || why="${why:+$why; }stdout differs"
			if [ -z "$why" ]; then
				echo "ok: $c"
				continue
			fi
			echo "--- stdout (diff want got)"
			diff "$tmp/want" "$tmp/out" | head -n 12 || :
			echo "--- stderr"
			head -n 12 "$tmp/err"
			fail "$c" "$why"
		done
	done
}

echo "== fork: a child's memory is a snapshot (tests/preload/pfork)"
t_pfork() { x "$top/tests/preload/pfork"; }
case_ pfork t_pfork "child: fds='same'
child: reused='written before fork'
child: kept='kept before fork'
child: big='a'
parent: child exit 0
parent: reused='PARENT WROTE THIS AFTER FORK'
parent: kept='PARENT CHANGED THIS'
parent: big='p'
alloc child: 100 MiB='allocated, checked, freed'
alloc parent: child exit 0
alloc parent: block='parent's block'
alloc parent: malloc='ok'
child: text='parent's text'
grandchild: text='child wrote this before its fork'
child: child exit 0
child: text='CHILD WROTE THIS AFTER ITS FORK'
parent: child exit 0
parent: text='PARENT WROTE THIS AFTER FORK'
all as expected"

if MNEMO_MALLOC=all MNEMO_PRELOAD_VERBOSE=1 LD_PRELOAD=$PL tests/preload/pfork \
	2>&1 >/dev/null | grep -q "at exit: [1-9][0-9]* persistent allocations"; then
	echo "ok: pfork's blocks came from the pool"
else
	fail "pfork's blocks came from the pool" "no persistent allocation reported"
fi

echo "== bash: pipelines and command substitution (forked children exec)"
t_bash_pipe() { x /usr/bin/bash -c 'ls / | wc -l'; }
case_ "bash -c 'ls / | wc -l'" t_bash_pipe
t_bash_long() {
	x /usr/bin/bash -c 'ls /usr/share/doc | sort | uniq -c | sort -n | tail -3'
}
case_ "bash: a five-stage pipeline" t_bash_long
t_bash_subst() {
	x /usr/bin/bash -c 'x=$(ls / | wc -l); echo $x; y=$( (echo a; echo b) | tr a-z A-Z); echo $y
for i in 1 2 3; do (echo "subshell $i"); done | cat -n'
}
case_ "bash: command substitution, subshells" t_bash_subst

echo "== a pyenv-like shim: a bash script that forks, then execs python3"
mkdir "$tmp/shim"
echo 3.11-test >"$tmp/shim/version"
cat >"$tmp/shim/python3" <<'EOF'
#!/usr/bin/bash
d=$(dirname "$0")
v=$(cat "$d/version")
export SHIM_VERSION=$v
exec /usr/bin/python3 "$@"
EOF
chmod +x "$tmp/shim/python3"
t_shim() {
	x "$tmp/shim/python3" -c 'import os, subprocess
print(os.environ["SHIM_VERSION"])
print(subprocess.run(["echo", "sub"], capture_output=True).stdout)' &&
	x /usr/bin/bash -c 'PATH=$1:$PATH; python3 -c "print(6 * 7)"' - "$tmp/shim"
}
case_ "through the shim" t_shim

echo "== python3: subprocess, pipes, os.fork, multiprocessing"
cat >"$tmp/sub.py" <<'EOF'
import os, subprocess, multiprocessing
print(subprocess.run(["echo", "sub"], capture_output=True).stdout)
for i in range(5):
    r = subprocess.run(["/usr/bin/tr", "a-z", "A-Z"], input=b"child %d" % i,
                       capture_output=True, check=True)
    print(r.stdout.decode())
p1 = subprocess.Popen(["/usr/bin/seq", "1000"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["/usr/bin/wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
print(p2.communicate()[0].decode().strip(), p1.wait(), p2.wait())
print(subprocess.run("echo $((6 * 7)) | cat", shell=True, capture_output=True).stdout)
d = {i: str(i) * 10 for i in range(100000)}
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)  # the parent has changed its dict
    ok = all(d[i] == str(i) * 10 for i in range(100000)) and len(d) == 100000
    os._exit(0 if ok else 3)
os.close(r)
for i in range(100000):
    d[i] = "parent"
d[-1] = "new"
os.write(w, b"x")
print("fork child:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
def sq(i):
    return sum(len(d[j]) for j in range(i, i + 1000))
with multiprocessing.get_context("fork").Pool(2) as pool:
    print(sum(pool.map(sq, range(0, 20000, 1000))))
EOF
t_subprocess() { x /usr/bin/python3 "$tmp/sub.py"; }
case_ "python3 subprocess" t_subprocess

echo "== python3: several hundred MiB"
# More than the default 64 MiB pool: the pool grows (and the interposer
# sees blocks in the grown part as its own).
t_pybig() {
	x /usr/bin/python3 -c 'x=[str(i)*3 for i in range(3000000)]; print(len(x)); print(sum(map(len, x)))'
}
case_ "python3 allocating several hundred MiB" t_pybig

echo "== make -j2 and gcc: several instances of one program at once"
mkdir "$tmp/src"
for f in a b c; do
	printf 'int %s(int x) { return x * 3 + %d; }\n' $f "$(printf %d "'$f")" >"$tmp/src/$f.c"
done
cat >"$tmp/src/main.c" <<'EOF'
#include <stdio.h>
int a(int), b(int), c(int);
int main(void) { printf("%d %d %d\n", a(1), b(2), c(3)); return 0; }
EOF
# a.o's compiler reads its source from a pipe that is fed only once c.o
# is compiled: two gcc (and two cc1) overlap on every run, not by luck;
# with -j2, main.o and b.o compile next to them.
cat >"$tmp/src/Makefile" <<'EOF'
CC = /usr/bin/gcc
prog: main.o a.o b.o
	$(CC) -o $@ main.o a.o b.o c.o
a.o: a.c c.c
	{ $(CC) -c -o c.o c.c; cat a.c; } | $(CC) -x c -c -o $@ -
%.o: %.c
	$(CC) -c -o $@ $<
EOF
t_make() {
	rm -rf "$tmp/mk" && cp -r "$tmp/src" "$tmp/mk" &&
	x /usr/bin/make -s -j2 --no-print-directory -C "$tmp/mk" &&
	x "$tmp/mk/prog"
}
case_ "make -j2 with gcc" t_make

echo "== git: init, add, commit, log, gc"
mkdir "$tmp/files"
for i in $(seq 1 40); do seq 1 $((i * 50)) >"$tmp/files/f$i.txt"; done
t_git() {
	export GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat GIT_AUTHOR_NAME=Tester \
		GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=Tester \
		GIT_COMMITTER_EMAIL=t@example.org \
		GIT_AUTHOR_DATE='2024-01-02T03:04:05Z' \
		GIT_COMMITTER_DATE='2024-01-02T03:04:05Z'
	r=$tmp/repo
	rm -rf "$r" && cp -r "$tmp/files" "$r" &&
	x /usr/bin/git -c init.defaultBranch=main init -q "$r" &&
	x /usr/bin/git -C "$r" add . &&
	x /usr/bin/git -C "$r" commit -q -m first &&
	echo changed >>"$r/f7.txt" && rm "$r/f9.txt" &&
	x /usr/bin/git -C "$r" commit -q -a -m second &&
	x /usr/bin/git -C "$r" log --stat --format='%H %an %s' &&
	x /usr/bin/git -C "$r" gc -q &&
	x /usr/bin/git -C "$r" fsck --no-progress &&
	x /usr/bin/git -C "$r" rev-list --count HEAD
}
case_ "git" t_git

echo "== tar c | tar t (gzip children)"
t_tar() {
	x /usr/bin/tar -czf - -C "$tmp" files | x /usr/bin/tar -tzf - | x /usr/bin/sort
}
case_ "tar -cz | tar -tz" t_tar

echo "== sort --parallel=2 (temporary files through gzip), xz -T2"
seq 1 200000 | awk '{ print ($1 * 7919) % 200003 }' >"$tmp/in.txt"
t_sort() {
	rm -rf "$tmp/sorttmp" && mkdir "$tmp/sorttmp" &&
	x /usr/bin/sort --parallel=2 -S 1M -T "$tmp/sorttmp" \
		--compress-program=gzip "$tmp/in.txt"
}
case_ "sort --parallel=2" t_sort
t_xz() {
	x /usr/bin/xz -T2 -1 -c "$tmp/in.txt" >"$tmp/in.xz" &&
	x /usr/bin/xz -T2 -dc "$tmp/in.xz" | md5sum &&
	md5sum <"$tmp/in.xz"
}
case_ "xz -T2" t_xz

echo "== sqlite3 on a file database"
cat >"$tmp/t.sql" <<'EOF'
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 40000)
  INSERT INTO t SELECT i, hex(i * 2654435761 % 1000003) || i, i * 1.5 FROM s;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(a), round(sum(c), 1) FROM t;
SELECT a, length(b) FROM t WHERE a % 9973 = 0 ORDER BY b LIMIT 5;
.shell /usr/bin/echo from a shell
SELECT substr(b, 1, 2), count(*) FROM t GROUP BY 1 ORDER BY 2 DESC LIMIT 3;
EOF
t_sqlite() {
	rm -f "$tmp/t.db" &&
	x /usr/bin/sqlite3 "$tmp/t.db" ".read $tmp/t.sql" &&
	x /usr/bin/sqlite3 "$tmp/t.db" "DELETE FROM t WHERE a % 2 = 0; VACUUM;
		SELECT count(*), max(a) FROM t;"
}
case_ "sqlite3" t_sqlite

if [ -n "$failed" ]; then
	echo "FAILED:$failed"
	exit 1
fi
echo "ALL PROCESS-TREE TESTS PASSED"
