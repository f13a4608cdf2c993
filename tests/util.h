/*
 * util.h -- shared helpers of the Criterion tests: scratch pools, file
 * fingerprints, and the crash harness that runs a workload in a child on
 * the sim backend and crashes it at a chosen persist point.
 */
#ifndef MNEMO_TEST_UTIL_H
#define MNEMO_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "mnemosyne.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A fresh path "<new temp dir>/<tag>.pool" (the pool does not exist); the
 * temp dir is made in $MNEMO_TEST_DIR, default /tmp. */
const char *t_path(const char *tag);
/* Create a pool of `size` bytes at `path` with the file backend (the dax
 * backend if $MNEMO_TEST_BACKEND=dax) and close it; asserts success. */
void t_create(const char *path, size_t size);
/* A pool of pool_size bytes at t_path(tag) holding one zeroed region
 * `name` of `size` bytes; closed again.  Returns the path. */
const char *t_pool_with_region(const char *tag, size_t pool_size,
			       const char *name, size_t size);
/* The address of region `name` of pool (asserts that it exists). */
void *t_region(mnemo_pool *pool, const char *name);
/* Open with flags, asserting success.  With $MNEMO_TEST_BACKEND=dax,
 * flags that name no backend get MNEMO_BACKEND_DAX. */
mnemo_pool *t_open(const char *path, unsigned flags);
/* 64-bit fingerprint of a whole file (to prove it was not changed). */
uint64_t t_file_hash(const char *path);
void t_copy(const char *from, const char *to);
/* Seed from MNEMO_TEST_SEED or the clock; logged so a failure can be
 * replayed. */
uint64_t t_seed(void);

/* Progress a crash workload reports through shared memory. */
struct t_progress {
	volatile int started; /* ops begun */
	volatile int done;    /* ops finished */
};
#define T_BEGIN(pr) ((pr)->started = (pr)->started + 1)
#define T_END(pr) ((pr)->done = (pr)->done + 1)

/* In a crash child: crash at persist point n; tear unfenced words with
 * `seed` if tear. */
void t_sim_env(int n, bool tear, uint64_t seed);

typedef void (*t_workload)(mnemo_pool *pool, struct t_progress *pr);
/* Returns true iff the state after `k` ops is what `pool` holds. */
typedef bool (*t_check)(mnemo_pool *pool, int k);

/*
 * For every persist point n = 1, 2, ... of `work` (run on a copy of the pool
 * at `base` opened with the sim backend), crash at n (tearing unfenced words
 * with `tear_seed` if tear), reopen with the file backend (recovery) and
 * assert that the state is that after `done` ops or, if an op was under way,
 * after done+1.  Stops when the workload runs to completion.  Returns the
 * number of persist points exercised.
 */
int t_crash_every_point(const char *base, t_workload work, t_check check,
			bool tear, uint64_t tear_seed);

/* t_crash_every_point in drop mode, then with `seeds` seeds of tearing
 * per 8-byte word and `seeds` of tearing per whole cache line (which makes
 * "a later line durable, an earlier one not" likely); logs the count. */
void t_crash_modes(const char *base, t_workload work, t_check check,
		   int seeds);

/*
 * kill -9 stress: `kills` times, fork a child that runs
 * child(path, seed, ready_fd) and never returns; the child calls
 * t_ready(ready_fd) once it has committed an operation (and may keep calling
 * it).  The parent blocks until that byte arrives (failing, with the child's
 * status, if the child dies first), waits 0 to 20 ms more (drawn from the
 * seed), kills it, asserts it died of SIGKILL, then calls after(path) to
 * recover and check.  after() returns the number of operations the pool
 * holds as committed (it is called once before the first kill too): each
 * child committed one before it was killed, so this must grow with every
 * kill.  Readiness, not a fixed sleep, decides
 * when the kill may come: a slow machine (qemu TCG) changes nothing but
 * the run time.  Seeds derive from t_seed().
 */
void t_kill_loop(const char *path, int kills,
		 void (*child)(const char *path, uint64_t seed, int ready_fd),
		 uint64_t (*after)(const char *path));
/* In a t_kill_loop child, after a committed operation: tell the parent
 * (the first call writes the byte; later calls, from any thread, return
 * at once). */
void t_ready(int ready_fd);

#ifdef __cplusplus
}
#endif

#endif
