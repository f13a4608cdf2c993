/*
 * pool_grow_unit.c -- pools that grow: big heaps from a small pool, the limit
 * and how to raise it, a full file (RLIMIT_FSIZE), growth while other
 * threads allocate and commit, and a crash at every persist point of
 * growth (sim backend).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "util.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static uint64_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* A directory with `need` bytes free for a big pool; if there is none,
 * the test is skipped, saying why on stderr. */
static const char *roomy_dir(uint64_t need)
{
	static const char *dirs[] = {"/var/tmp", "/dev/shm", "/tmp"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct statvfs v;
		if (statvfs(dirs[i], &v) == 0 &&
		    (uint64_t)v.f_bavail * v.f_frsize >= need)
			return dirs[i];
	}
	fprintf(stderr, "pool_grow: skipped: no directory has %llu bytes "
		"free\n", (unsigned long long)need);
	cr_skip_test("no directory has %llu bytes free",
		     (unsigned long long)need);
	return NULL;
}

/* Allocate total bytes in blocks of bs from a pool created at 64 MiB;
 * every block's first and last words survive a reopen. */
static void fill_big(uint64_t bs, uint64_t total)
{
	const char *dir = roomy_dir(2 * total + 1 * GiB);
	if (!dir)
		return;
	setenv("MNEMO_TEST_DIR", dir, 1);
	const char *path = t_path("big");
	unsetenv("MNEMO_TEST_DIR");
	mnemo_pool *p;
	cr_assert_eq(mnemo_pool_create(path, 64 * MiB, NULL, 0, &p), 0, "%s",
		     mnemo_errormsg());
	uint64_t n = total / bs;
	uint64_t **blk = malloc(n * sizeof(*blk));
	cr_assert(blk);
	for (uint64_t i = 0; i < n; i++) {
		blk[i] = mnemo_heap_alloc(p, bs, 0, 0);
		cr_assert(blk[i], "block %llu of %llu: %s",
			  (unsigned long long)i, (unsigned long long)n,
			  mnemo_errormsg());
		blk[i][0] = i;
		blk[i][bs / 8 - 1] = ~i;
	}
	uint64_t size = mnemo_pool_size(p);
	cr_log_info("%llu blocks of %llu bytes: the pool grew from 64 MiB to "
		    "%llu MiB", (unsigned long long)n, (unsigned long long)bs,
		    (unsigned long long)(size / MiB));
	cr_assert_geq(size, total);
	cr_assert_eq(mnemo_pool_close(&p), 0, "%s", mnemo_errormsg());
	cr_assert_eq(file_size(path), size);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_pool_size(p), size);
	for (uint64_t i = 0; i < n; i++)
		cr_assert(blk[i][0] == i && blk[i][bs / 8 - 1] == ~i,
			  "block %llu lost", (unsigned long long)i);
	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0);
	cr_assert_eq(st.live_blocks, n);
	mnemo_pool_close(&p);
	free(blk);
	unlink(path);
}

Test(pool_grow, one_gib_of_64_byte_blocks)
{
	fill_big(64, 1 * GiB);
}

Test(pool_grow, four_gib_of_1_mib_blocks)
{
	fill_big(1 * MiB, 4 * GiB);
}

/* The limit: ENOMEM naming it; a larger MNEMO_POOL_MAX at open raises it
 * (and is recorded), a region bigger than the limit is refused. */
Test(pool_grow, limit_is_enomem_and_can_be_raised)
{
	const char *path = t_path("lim");
	setenv("MNEMO_POOL_MAX", "32M", 1);
	mnemo_pool *p;
	cr_assert_eq(mnemo_pool_create(path, 8 * MiB, NULL, 0, &p), 0, "%s",
		     mnemo_errormsg());
	unsetenv("MNEMO_POOL_MAX");
	cr_assert_eq(mnemo_pool_max(p), 32 * MiB);
	void *r;
	cr_assert_eq(mnemo_region_create(p, "a", 20 * MiB, &r), 0, "%s",
		     mnemo_errormsg());
	cr_assert_eq(mnemo_region_create(p, "b", 20 * MiB, &r), -ENOMEM);
	cr_assert(strstr(mnemo_errormsg(), "limit is 33554432 bytes") &&
		  strstr(mnemo_errormsg(), "MNEMO_POOL_MAX"),
		  "%s", mnemo_errormsg());
	mnemo_pool_close(&p);
	setenv("MNEMO_POOL_MAX", "128M", 1);
	p = t_open(path, 0);
	unsetenv("MNEMO_POOL_MAX");
	cr_assert_eq(mnemo_pool_max(p), 128 * MiB);
	cr_assert_eq(mnemo_region_create(p, "b", 20 * MiB, &r), 0, "%s",
		     mnemo_errormsg());
	mnemo_pool_close(&p);
	p = t_open(path, 0); /* the raised limit was recorded */
	cr_assert_eq(mnemo_pool_max(p), 128 * MiB);
	cr_assert_eq(mnemo_region_find(p, "a", &r, NULL), 0);
	mnemo_pool_close(&p);
}

/* Something mapped in the growth window (say, a pool another process
 * placed there): the pool still opens, and grows up to it. */
Test(pool_grow, window_partly_taken)
{
	const char *path = t_path("win");
	t_create(path, 8 * MiB);
	mnemo_pool *p = t_open(path, 0);
	char *base = mnemo_pool_base(p);
	size_t max = mnemo_pool_max(p);
	mnemo_pool_close(&p);
	cr_assert_gt(max, 64 * MiB);
	void *q = mmap(base + 64 * MiB, 4096, PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	cr_assert_eq(q, base + 64 * MiB);
	p = t_open(path, 0);
	/* up to the mapping, less what libpmem2 reserves past a window */
	cr_assert(mnemo_pool_max(p) <= 64 * MiB &&
		  mnemo_pool_max(p) >= 56 * MiB, "max %zu", mnemo_pool_max(p));
	void *r;
	cr_assert_eq(mnemo_region_create(p, "a", 40 * MiB, &r), 0, "%s",
		     mnemo_errormsg());
	cr_assert_eq(mnemo_region_create(p, "b", 40 * MiB, &r), -ENOMEM);
	mnemo_pool_close(&p);
	munmap(q, 4096);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_pool_max(p), max, "the limit was not recorded");
	cr_assert_eq(mnemo_region_create(p, "b", 40 * MiB, &r), 0);
	mnemo_pool_close(&p);
}

/* A file that cannot grow (RLIMIT_FSIZE, as a full disk would): a clear
 * error now, never a SIGBUS later, and the data stays. */
Test(pool_grow, file_that_cannot_grow)
{
	const char *path = t_path("fsz");
	mnemo_pool *p;
	cr_assert_eq(mnemo_pool_create(path, 8 * MiB, NULL, 0, &p), 0);
	void *r;
	cr_assert_eq(mnemo_region_create(p, "keep", 1 * MiB, &r), 0);
	strcpy(r, "kept");
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {16 * MiB, 16 * MiB};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	int rc = mnemo_region_create(p, "big", 32 * MiB, &r);
	cr_assert(rc == -ENOSPC || rc == -EFBIG, "rc %d", rc);
	cr_assert(strstr(mnemo_errormsg(), "cannot grow pool"), "%s",
		  mnemo_errormsg());
	cr_assert_eq(mnemo_pool_size(p), 8 * MiB);
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_region_find(p, "keep", &r, NULL), 0);
	cr_assert_str_eq(r, "kept");
	mnemo_pool_close(&p);
	cr_assert_eq(file_size(path), 8 * MiB, "the partial growth stayed");
}

/* A crash after the file grew but before the pool recorded it leaves the
 * file longer than the pool: the next open cuts it back. */
Test(pool_grow, open_cuts_a_file_longer_than_the_pool)
{
	const char *path = t_path("long");
	t_create(path, 8 * MiB);
	cr_assert_eq(truncate(path, 40 * MiB), 0);
	mnemo_pool *p = t_open(path, 0);
	cr_assert_eq(mnemo_pool_size(p), 8 * MiB);
	mnemo_pool_close(&p);
	cr_assert_eq(file_size(path), 8 * MiB);
}

/* Threads allocate and commit while the pool grows under them. */
struct worker {
	mnemo_pool *pool;
	uint64_t *acc; /* two words per thread in a region */
	int id, ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	w->ok = 1;
	for (int i = 0; i < 3000 && w->ok; i++) {
		uint64_t *b = mnemo_heap_alloc(w->pool, 4096 + 64 * (i % 8), 0, 0);
		int rc;
		MNEMO_TX(rc)
		{
			uint64_t *a = &w->acc[2 * w->id];
			mnemo_tx_set64(a, mnemo_tx_get64(a) + 1);
		}
		w->ok = b && rc == 0;
		if (b)
			*b = (uint64_t)i;
	}
	return NULL;
}

Test(pool_grow, while_threads_allocate_and_commit)
{
	const char *path = t_pool_with_region("thr", 4 * MiB, "acc", 4096);
	mnemo_pool *p = t_open(path, 0);
	uint64_t *acc = t_region(p, "acc");
	enum { T = 4 };
	struct worker w[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		w[i] = (struct worker){p, acc, i, 0};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		cr_assert(w[i].ok, "thread %d: %s", i, mnemo_errormsg());
		cr_assert_eq(acc[2 * i], 3000);
	}
	cr_assert_gt(mnemo_pool_size(p), 4 * MiB);
	mnemo_pool_close(&p);
}

/* ---- crash at every persist point of growth (sim) ---- */

#define OPS 3
#define REGION (9 * MiB)

static void grow_work(mnemo_pool *pool, struct t_progress *pr)
{
	char name[8];
	for (int k = 0; k < OPS; k++) {
		T_BEGIN(pr);
		snprintf(name, sizeof(name), "r%d", k);
		void *r;
		cr_assert_eq(mnemo_region_create(pool, name, REGION, &r), 0,
			     "%s", mnemo_errormsg());
		uint64_t *w = r;
		w[REGION / 8 - 1] = (uint64_t)k + 1;
		mnemo_persist(&w[REGION / 8 - 1], 8);
		w[0] = 0x600d0000 + (uint64_t)k; /* the op's commit */
		mnemo_persist(w, 8);
		T_END(pr);
	}
}

/* State after k ops: regions r0..r(k-1), each marked, and a pool that
 * holds them.  Region rk may exist unmarked (the op creates it, then marks
 * it): a region is created whole and zeroed, or not at all. */
static bool grow_check(mnemo_pool *pool, int k)
{
	char name[8];
	for (int i = 0; i < OPS; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		void *r = NULL;
		size_t n = 0;
		int rc = mnemo_region_find(pool, name, &r, &n);
		if (rc == -ENOENT && i >= k)
			continue;
		uint64_t *w = r;
		if (rc || n != REGION)
			return false;
		uint64_t first = w[0], last = w[REGION / 8 - 1];
		if (i >= k && (first || (last && last != (uint64_t)i + 1)))
			return false; /* created (zeroed), perhaps half marked */
		if (i < k && (first != 0x600d0000 + (uint64_t)i ||
			      last != (uint64_t)i + 1))
			return false;
	}
	return mnemo_pool_size(pool) > (uint64_t)k * REGION;
}

Test(pool_grow, crash_at_every_persist_point, .timeout = 600)
{
	const char *base = t_path("crash");
	t_create(base, 2 * MiB);
	t_crash_modes(base, grow_work, grow_check, 1);
}
