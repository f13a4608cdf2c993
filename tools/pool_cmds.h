/*
 * pool_cmds.h -- mnemoctl's commands on pools (pool_cmds.c, pool_show.c).
 * Each gets the arguments after `mnemoctl` (argv[0] is the command) and
 * returns the exit status: 0 done (or healthy), 1 problems found, 2 could
 * not run (bad arguments, or the pool could not be opened; why, on
 * stderr).
 */
#ifndef MNEMOCTL_POOL_CMDS_H
#define MNEMOCTL_POOL_CMDS_H

#include <stdbool.h>
#include <stdint.h>

#include "mnemosyne.h"

#define EXIT_PROBLEMS 1
#define EXIT_USAGE 2

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_regions(int argc, char **argv);
int cmd_roots(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_crashtest(int argc, char **argv);
int cmd_repair(int argc, char **argv);

/* ---- shared by the commands (pool_cmds.c) ---- */
/* Options every pool command takes. */
struct pool_opts {
	bool json;
	bool all;        /* regions: libmnemo's own too */
	bool raw;        /* dump: bytes, not hex */
	bool no_backup;  /* repair */
	const char *region, *root; /* dump: what */
	uint64_t offset, length;   /* dump: which bytes (length 0: all) */
	uint64_t size, max, addr;  /* create */
	const char *backend;       /* create */
	const char *path;          /* the pool (the one operand) */
};
/* Parse argv into o (the options `allowed` lists, getopt_long names);
 * 0, or EXIT_USAGE after saying why on stderr. */
int pool_args(int argc, char **argv, const char *allowed,
	      struct pool_opts *o);
/* Open o->path (recovering it if its last user crashed); NULL after
 * saying why on stderr. */
mnemo_pool *pool_open_for(const char *cmd, const struct pool_opts *o);
/* After a failed call on the pool p that pool_open_for opened: say why
 * (unless the open itself failed, which said so) and close p.  Returns
 * EXIT_USAGE. */
int pool_failed(const char *cmd, mnemo_pool **p);
/* Copy file `from` to `to` (created 0600 or truncated); 0, or -1 with
 * errno. */
int file_copy(const char *from, const char *to);
/* "64.0 MiB" for n bytes, in buf. */
const char *human_size(uint64_t n, char *buf, size_t len);

#endif
