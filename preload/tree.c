/*
 * tree.c -- who else holds a pool: the process tree around this one.
 *
 * A pool is open in one process at a time (libmnemo takes an exclusive
 * flock).  When the pool this process wants is busy, init.c decides what it
 * gets from who holds it: an ancestor (this process is a helper the holder
 * started, e.g. a program run by an interposed shell) or a stranger.  The
 * holder is read from /proc/locks, which names the process that took each
 * flock; nothing here is needed on the fast path.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

/* The pid that holds the flock of `path`, or 0 if unknown. */
pid_t tree_holder(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256];
	pid_t pid = 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		int p;
		/* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:56789 0 EOF"; waiters
		 * ("1: -> FLOCK ...") do not match the pattern. */
		if (sscanf(line, "%*d: FLOCK %*s %*s %d %x:%x:%llu", &p, &maj,
			   &min, &ino) == 4 &&
		    maj == major(st.st_dev) && min == minor(st.st_dev) &&
		    ino == (unsigned long long)st.st_ino)
			pid = p;
	}
	fclose(f);
	return pid;
}

/* The parent of pid (0 if unknown): field 4 of /proc/PID/stat, after the
 * command name in parentheses (which may itself hold spaces and ')'). */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *r = strrchr(buf, ')');
	int ppid = 0;
	if (!r || sscanf(r + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

int tree_is_ancestor(pid_t pid)
{
	if (pid <= 0)
		return 0;
	/* a chain ends at 1 (init) or 0 (the kernel); 64 bounds a loop
	 * through a pid reused while we walk */
	pid_t p = getppid();
	for (int i = 0; p > 1 && i < 64; i++, p = parent_of(p))
		if (p == pid)
			return 1;
	return pid == 1;
}

void tree_comm(pid_t pid, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(buf, n, "?");
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)n, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}
