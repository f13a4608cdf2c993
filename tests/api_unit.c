/*
 * api_unit.c -- the conventions of the public API that hold across
 * areas: every backend and durability can be chosen in the open flags,
 * bad flags are refused without touching the pool, statistics structs
 * can grow without breaking callers built against an older header, and
 * failures follow the one error rule of mnemosyne(7).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "util.h"

#define MiB (1u << 20)

/* ---- open flags --------------------------------------------------------- */

Test(api, every_durability_can_be_chosen_in_the_flags)
{
	static const struct {
		unsigned flag;
		const char *backend; /* what mnemo_pool_backend() names */
	} dur[] = {{MNEMO_DURABILITY_PROCESS, "file"},
		   {MNEMO_DURABILITY_POWER, "file(power)"},
		   {MNEMO_DURABILITY_PMEM, "file(pmem)"}};
	const char *path = t_path("dur");
	t_create(path, 4 * MiB);
	/* The flags win over the environment, which would be refused. */
	setenv("MNEMO_DURABILITY", "bogus", 1);
	for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
		mnemo_pool *p = NULL;
		int rc = mnemo_pool_open(path, MNEMO_BACKEND_FILE | dur[i].flag,
					 &p);
		cr_assert_eq(rc, 0, "durability 0x%x: %s", dur[i].flag,
			     mnemo_errormsg());
		cr_assert_str_eq(mnemo_pool_backend(p), dur[i].backend);
		cr_assert_eq(mnemo_pool_close(&p), 0);
	}
	/* DEFAULT leaves the choice to the environment. */
	mnemo_pool *p = NULL;
	cr_assert_eq(mnemo_pool_open(path, MNEMO_BACKEND_FILE, &p), -EINVAL);
	cr_assert_null(p);
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_DURABILITY=bogus"), "%s",
		  mnemo_errormsg());
	unsetenv("MNEMO_DURABILITY");
}

/* Without /dev/mnemo the kmod backend is the file backend (mnemo.ko(4));
 * with it, the guest test kmod_pool.sh checks the kmod backend itself. */
Test(api, the_kmod_backend_can_be_chosen_in_the_flags)
{
	const char *path = t_path("kmod");
	t_create(path, 4 * MiB);
	setenv("MNEMO_BACKEND", "bogus", 1); /* the flags win */
	mnemo_pool *p = NULL;
	int rc = mnemo_pool_open(path, MNEMO_BACKEND_KMOD, &p);
	unsetenv("MNEMO_BACKEND");
	cr_assert_eq(rc, 0, "%s", mnemo_errormsg());
	const char *want = access("/dev/mnemo", F_OK) == 0 ? "kmod" : "file";
	cr_assert_str_eq(mnemo_pool_backend(p), want);
	cr_assert_eq(mnemo_pool_close(&p), 0);
}

Test(api, unknown_flags_are_refused_and_the_pool_is_untouched)
{
	static const unsigned bad[] = {
		0x8000u,                          /* a bit of no field */
		0x0050u,                          /* a backend beyond KMOD */
		0x00f0u,                          /* the whole backend field */
		0x0400u,                          /* a durability beyond PMEM */
		MNEMO_BACKEND_FILE | 0x10000u,    /* a good field, a bad bit */
	};
	const char *path = t_path("badflags");
	t_create(path, 4 * MiB);
	uint64_t before = t_file_hash(path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mnemo_pool *p = NULL;
		cr_assert_eq(mnemo_pool_open(path, bad[i], &p), -EINVAL,
			     "flags 0x%x", bad[i]);
		cr_assert_null(p);
		cr_assert(strstr(mnemo_errormsg(), "flags"), "%s",
			  mnemo_errormsg());
	}
	cr_assert_eq(t_file_hash(path), before);
	/* Refused before any file is made. */
	const char *fresh = t_path("badcreate");
	cr_assert_eq(mnemo_pool_create(fresh, 4 * MiB, NULL, 0x8000u,
				       &(mnemo_pool *){NULL}),
		     -EINVAL);
	cr_assert_eq(mnemo_pool_open(fresh, MNEMO_CREATE | 0x8000u,
				     &(mnemo_pool *){NULL}),
		     -EINVAL);
	cr_assert_neq(access(fresh, F_OK), 0, "%s was created", fresh);
}

/* MNEMO_PRIVATE: the file is read, never written. */
Test(api, a_private_open_never_writes_the_file)
{
	const char *path = t_path("private");
	setenv("MNEMO_POOL_MAX", "64M", 1); /* room to grow, but not here */
	t_create(path, 4 * MiB);
	unsetenv("MNEMO_POOL_MAX");
	mnemo_pool *p = t_open(path, 0);
	char *r;
	cr_assert_eq(mnemo_region_create(p, "r", 4096, (void **)&r), 0);
	strcpy(r, "on disk");
	mnemo_persist(r, 8);
	cr_assert_not_null(mnemo_heap_alloc(p, 100, 0, 0)); /* a segment */
	cr_assert_eq(mnemo_pool_close(&p), 0);
	uint64_t before = t_file_hash(path);

	cr_assert_eq(mnemo_pool_open(path, MNEMO_PRIVATE, &p), 0, "%s",
		     mnemo_errormsg());
	cr_assert_str_eq(mnemo_pool_backend(p), "file(private)");
	cr_assert_eq(mnemo_region_find(p, "r", (void **)&r, NULL), 0);
	cr_assert_str_eq(r, "on disk");
	strcpy(r, "in memory");   /* plain store */
	mnemo_persist(r, 10);
	cr_assert_eq(mnemo_tx_begin(), 0);
	cr_assert_eq(mnemo_tx_store(r + 100, "tx", 3), 0);
	cr_assert_eq(mnemo_tx_commit(), 0);
	cr_assert_not_null(mnemo_heap_alloc(p, 100, 0, 0));
	void *big = NULL; /* more than the pool holds: it would grow */
	cr_assert_lt(mnemo_pool_size(p), mnemo_pool_max(p) / 2);
	cr_assert_eq(mnemo_region_create(p, "big", mnemo_pool_size(p), &big),
		     -EROFS, "%s", mnemo_errormsg());
	cr_assert(strstr(mnemo_errormsg(), "MNEMO_PRIVATE"), "%s",
		  mnemo_errormsg());
	cr_assert_eq(mnemo_pool_close(&p), 0);
	cr_assert_eq(t_file_hash(path), before);

	p = t_open(path, 0);
	cr_assert_eq(mnemo_region_find(p, "r", (void **)&r, NULL), 0);
	cr_assert_str_eq(r, "on disk");
	cr_assert_eq(mnemo_pool_close(&p), 0);

	cr_assert_eq(mnemo_pool_create(t_path("privcreate"), 4 * MiB, NULL,
				       MNEMO_PRIVATE, &p), -EINVAL);
	static const unsigned bad[] = {
		MNEMO_PRIVATE | MNEMO_CREATE, MNEMO_PRIVATE | MNEMO_BACKEND_DAX,
		MNEMO_PRIVATE | MNEMO_DURABILITY_POWER};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mnemo_pool_open(path, bad[i], &p), -EINVAL,
			     "flags 0x%x", bad[i]);
}

/* ---- statistics that grow ----------------------------------------------- */

/* What a caller compiled against a later header passes: more fields. */
struct later_stats {
	struct mnemo_heap_stats v01;
	uint64_t added[8];
};

Test(api, heap_stats_fill_what_both_sides_know)
{
	const char *path = t_path("stats");
	t_create(path, 8 * MiB);
	mnemo_pool *p = t_open(path, 0);
	for (int i = 0; i < 10; i++)
		cr_assert_not_null(mnemo_heap_alloc(p, 100, 0, 0));

	struct mnemo_heap_stats st;
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st)), 0, "%s",
		     mnemo_errormsg());
	cr_assert_eq(st.live_blocks, 10);

	struct later_stats later;
	memset(&later, 0xab, sizeof(later));
	cr_assert_eq(mnemo_heap_stats(p, &later.v01, sizeof(later)), 0);
	cr_assert_eq(later.v01.live_blocks, 10);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(later.added[i], 0, "field %d unknown, not 0", i);

	/* Smaller than version 0.1's struct: refused, nothing written. */
	memset(&st, 0xab, sizeof(st));
	cr_assert_eq(mnemo_heap_stats(p, &st, sizeof(st) - 8), -EINVAL);
	cr_assert_eq(st.live_blocks, 0xababababababababull);
	cr_assert_eq(mnemo_heap_stats(NULL, &st, sizeof(st)), -EINVAL);
	cr_assert_eq(mnemo_pool_close(&p), 0);
}

Test(api, heap_classes_say_how_many_and_fill_what_fits)
{
	const char *path = t_path("classes");
	t_create(path, 8 * MiB);
	mnemo_pool *p = t_open(path, 0);
	int n = mnemo_heap_classes(p, NULL, 0);
	cr_assert_gt(n, 2, "%d: %s", n, mnemo_errormsg());
	for (int i = 0; i < 5; i++)
		cr_assert_not_null(mnemo_heap_alloc(p, 1, 0, 0));

	struct mnemo_heap_class c[2];
	memset(c, 0xab, sizeof(c));
	cr_assert_eq(mnemo_heap_classes(p, c, 1), n); /* only c[0] */
	cr_assert_eq(c[0].block_size, 16);
	cr_assert_eq(c[0].blocks, 5);
	cr_assert_eq(c[0].pages, 1);
	cr_assert_eq(c[1].blocks, 0xababababababababull, "past n: untouched");

	struct mnemo_heap_class *all = calloc((size_t)n, sizeof(*all));
	cr_assert_eq(mnemo_heap_classes(p, all, (size_t)n), n);
	for (int i = 1; i < n; i++)
		cr_assert_gt(all[i].block_size, all[i - 1].block_size);
	free(all);
	cr_assert_eq(mnemo_heap_classes(p, NULL, 1), -EINVAL);
	cr_assert_eq(mnemo_heap_classes(NULL, c, 1), -EINVAL);
	cr_assert_eq(mnemo_pool_close(&p), 0);
}

/* ---- the error rule ------------------------------------------------------ */

/* A failing int function returns a negative code and leaves a message; a
 * failing pointer function returns NULL with errno; queries answer 0. */
Test(api, failures_follow_the_one_error_rule)
{
	const char *path = t_path("rule");
	t_create(path, 4 * MiB);
	mnemo_pool *p = t_open(path, 0);

	cr_assert_eq(mnemo_pool_open(path, 0, NULL), -EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "poolp"), "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_region_create(p, NULL, 0, &(void *){NULL}),
		     -EINVAL);
	cr_assert_eq(mnemo_root_get(p, "absent", &(void *){NULL}), -ENOENT);

	errno = 0;
	cr_assert_null(mnemo_heap_alloc(p, 16, 3, 0)); /* not a power of 2 */
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(pmap((void *)4096, 4096, 3, 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(mnemo_errormsg(), "pmap"), "%s", mnemo_errormsg());

	cr_assert_eq(mnemo_pool_size(NULL), 0);
	cr_assert_null(mnemo_pool_base(NULL));
	cr_assert_str_eq(mnemo_pool_backend(NULL), "none");
	cr_assert_eq(mnemo_rawl_count(NULL), 0);
	cr_assert_eq(mnemo_stat_get((enum mnemo_stat)1000), 0);
	cr_assert_eq(mnemo_pool_close(&p), 0);
	cr_assert_eq(mnemo_pool_close(&p), -EINVAL); /* p is NULL now */
}
