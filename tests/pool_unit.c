/*
 * pool_unit.c -- pools, regions and roots through the public API: persistence
 * across processes, stable addresses, the default pool and pmap/punmap.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* Run fn in a child process (a "later run" of the program); assert it
 * exits 0. */
static void in_child(void (*fn)(const char *), const char *path)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		fn(path);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (%d)", st);
}

struct node {
	struct node *next;
	uint64_t value;
};

static void build_list(const char *path)
{
	mnemo_pool *p = t_open(path, 0);
	struct node *a, *b;
	if (mnemo_region_create(p, "a", 4096, (void **)&a) ||
	    mnemo_region_create(p, "b", 1 << 16, (void **)&b))
		_exit(1);
	b->value = 2;
	a->value = 1;
	a->next = b; /* a raw pointer across regions */
	mnemo_persist(b, sizeof(*b));
	mnemo_persist(a, sizeof(*a));
	if (mnemo_root_set(p, "list", a))
		_exit(1);
	mnemo_pool_close(&p);
}

static void walk_list(const char *path)
{
	mnemo_pool *p = t_open(path, 0);
	struct node *a;
	if (mnemo_root_get(p, "list", (void **)&a))
		_exit(1);
	if (a->value != 1 || a->next->value != 2 || a->next->next)
		_exit(2);
	mnemo_pool_close(&p);
}

Test(pool, raw_pointers_survive_restart)
{
	const char *path = t_path("list");
	t_create(path, 4 << 20);
	in_child(build_list, path);
	in_child(walk_list, path);
	in_child(walk_list, path);
}

Test(pool, mapped_at_recorded_address)
{
	const char *path = t_path("addr");
	void *want = (void *)0x345600000000ull;
	mnemo_pool *p = NULL;
	cr_assert_eq(mnemo_pool_create(path, 2 << 20, want, 0, &p), 0, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_pool_base(p), want);
	cr_assert_eq(mnemo_pool_size(p), 2u << 20);
	/* The automatic choice: dax on a DAX mount (the guest tests). */
	const char *tb = getenv("MNEMO_TEST_BACKEND");
	cr_assert_str_eq(mnemo_pool_backend(p), tb && *tb ? tb : "file");
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_pool_base(p), want);
	mnemo_pool_close(&p);
}

Test(pool, file_is_private_and_fully_allocated)
{
	const char *path = t_path("mode");
	t_create(path, 3 << 20);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(st.st_size, 3 << 20);
	cr_assert_geq((long long)st.st_blocks * 512, 3 << 20);
}

Test(pool, regions_create_find_delete)
{
	const char *path = t_path("regions");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *a, *b, *c;
	size_t sz;
	cr_assert_eq(mnemo_region_create(p, "a", 100, &a), 0);
	cr_assert_eq(mnemo_region_create(p, NULL, 5000, &b), 0);
	cr_assert_eq(mnemo_region_find(p, "a", &c, &sz), 0);
	cr_assert_eq(c, a);
	cr_assert_eq(sz, 4096u, "sizes round up to pages");
	memset(b, 1, 5000);
	cr_assert_eq(mnemo_region_delete(p, a), 0);
	cr_assert_eq(mnemo_region_find(p, "a", &c, &sz), -ENOENT);
	cr_assert_eq(mnemo_region_create(p, "a", 4096, &c), 0);
	cr_assert_eq(c, a, "first fit reuses the freed extent");
	cr_assert_eq(((char *)c)[0], 0, "new regions are zeroed");
	mnemo_pool_close(&p);
}

Test(pool, deleted_region_is_inaccessible)
{
	const char *path = t_path("efault");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, 0);
	char *a;
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(mnemo_region_create(p, "a", 4096, (void **)&a), 0);
	cr_assert_eq(write(fds[1], a, 1), 1);
	cr_assert_eq(mnemo_region_delete(p, a), 0);
	/* The kernel reads the page for us: EFAULT, not a signal (which
	 * sanitizers would intercept). */
	cr_assert_eq(write(fds[1], a, 1), -1);
	cr_assert_eq(errno, EFAULT);
	mnemo_pool_close(&p);
}

Test(pool, roots_set_get_delete_persist)
{
	const char *path = t_path("roots");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *v;
	cr_assert_eq(mnemo_root_get(p, "r", &v), -ENOENT);
	cr_assert_eq(mnemo_root_set(p, "r", (void *)0x1234), 0);
	cr_assert_eq(mnemo_root_set(p, "s", (void *)0x99), 0);
	cr_assert_eq(mnemo_root_set(p, "r", (void *)0x5678), 0);
	mnemo_pool_close(&p);
	p = t_open(path, 0);
	cr_assert_eq(mnemo_root_get(p, "r", &v), 0);
	cr_assert_eq(v, (void *)0x5678);
	cr_assert_eq(mnemo_root_delete(p, "r"), 0);
	cr_assert_eq(mnemo_root_get(p, "r", &v), -ENOENT);
	cr_assert_eq(mnemo_root_get(p, "s", &v), 0);
	cr_assert_eq(v, (void *)0x99);
	mnemo_pool_close(&p);
}

Test(pool, default_pool_and_pmap)
{
	const char *path = t_path("default");
	setenv("MNEMO_POOL", path, 1);
	setenv("MNEMO_POOL_SIZE", "2M", 1);
	cr_assert_str_eq(mnemo_pool_default_path(), path);
	char *a = pmap(NULL, 10000, PROT_READ | PROT_WRITE, 0);
	cr_assert_not_null(a, "%s", mnemo_errormsg());
	cr_assert_eq(mnemo_pool_size(mnemo_default_pool()), 2u << 20);
	a[9999] = 5;
	cr_assert_eq(punmap(a, 10), -EINVAL, "length must match");
	cr_assert_eq(punmap(a, 10000), 0);
	cr_assert_null(pmap((void *)0x1000, 4096, PROT_READ | PROT_WRITE, 0));
	cr_assert_eq(errno, EINVAL);
}

Test(pool, default_location_is_under_home)
{
	unsetenv("MNEMO_POOL");
	setenv("XDG_DATA_HOME", "/nonexistent/xdg", 1);
	cr_assert_str_eq(mnemo_pool_default_path(), "/nonexistent/xdg/mnemosyne/default.pool");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	cr_assert_str_eq(mnemo_pool_default_path(), "/home/u/.local/share/mnemosyne/default.pool");
}

Test(pool, create_with_open_flag_and_delete)
{
	const char *path = t_path("autocreate");
	setenv("MNEMO_POOL_SIZE", "1M", 1);
	mnemo_pool *p = t_open(path, MNEMO_CREATE);
	cr_assert_eq(mnemo_pool_size(p), 1u << 20);
	cr_assert_eq(mnemo_pool_delete(path), -EBUSY);
	mnemo_pool_close(&p);
	cr_assert_eq(mnemo_pool_delete(path), 0);
	cr_assert_eq(access(path, F_OK), -1);
}

Test(pool, two_pools_at_once)
{
	const char *a = t_path("one"), *b = t_path("two");
	t_create(a, 1 << 20);
	t_create(b, 1 << 20);
	mnemo_pool *p = t_open(a, 0), *q = t_open(b, 0);
	cr_assert_neq(mnemo_pool_base(p), mnemo_pool_base(q));
	mnemo_pool_close(&p);
	mnemo_pool_close(&q);
}

Test(pool, power_durability_and_sim_backends)
{
	const char *path = t_path("backends");
	t_create(path, 1 << 20);
	mnemo_pool *p = t_open(path, MNEMO_BACKEND_FILE | MNEMO_DURABILITY_POWER);
	cr_assert_str_eq(mnemo_pool_backend(p), "file(power)");
	uint64_t *w;
	cr_assert_eq(mnemo_region_create(p, "w", 8, (void **)&w), 0);
	cr_assert_eq(mnemo_store64(w, 77), 0);
	mnemo_pool_close(&p);
	setenv("MNEMO_BACKEND", "sim", 1); /* not t_open: no forced backend */
	cr_assert_eq(mnemo_pool_open(path, 0, &p), 0, "%s", mnemo_errormsg());
	cr_assert_str_eq(mnemo_pool_backend(p), "sim");
	cr_assert_eq(mnemo_region_find(p, "w", (void **)&w, NULL), 0);
	cr_assert_eq(*w, 77u);
	mnemo_pool_close(&p);
	unsetenv("MNEMO_BACKEND");
}

Test(pool, punmap_rejects_absurd_lengths)
{
	setenv("MNEMO_POOL", t_path("punmap"), 1);
	setenv("MNEMO_POOL_SIZE", "1M", 1);
	char *a = pmap(NULL, 12288, PROT_READ | PROT_WRITE, 0);
	cr_assert_not_null(a, "%s", mnemo_errormsg());
	cr_assert_eq(punmap(a, SIZE_MAX), -EINVAL);
	cr_assert_eq(punmap(a, 0), -EINVAL);
	cr_assert_eq(punmap(a, 12288), 0);
}

/* ---- listing and info ------------------------------------------------ */

struct seen {
	char names[8][MNEMO_NAME_MAX + 1];
	void *addr[8];
	size_t size[8];
	int n, stop_at;
	mnemo_pool *pool; /* the callback deletes a region through it */
};

static int see_region(const char *name, void *addr, size_t size, void *arg)
{
	struct seen *s = arg;
	cr_assert_lt(s->n, 8);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->addr[s->n] = addr;
	s->size[s->n] = size;
	if (s->pool && s->n == 0) /* the library may be called back */
		cr_assert_eq(mnemo_region_delete(s->pool, addr), 0, "%s",
			     mnemo_errormsg());
	return ++s->n == s->stop_at ? 42 : 0;
}

Test(pool, regions_are_listed_by_address)
{
	const char *path = t_path("list");
	t_create(path, 4 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *a, *b, *c;
	cr_assert_eq(mnemo_region_create(p, "a", 100, &a), 0);
	cr_assert_eq(mnemo_region_create(p, NULL, 5000, &b), 0);
	cr_assert_eq(mnemo_region_create(p, "c", 4096, &c), 0);
	cr_assert_not_null(mnemo_heap_alloc(p, 10, 0, 0)); /* a heap segment */
	struct seen s = {.stop_at = -1};
	cr_assert_eq(mnemo_region_foreach(p, 0, see_region, &s), 0);
	cr_assert_eq(s.n, 3, "libmnemo's regions are left out");
	cr_assert_str_eq(s.names[0], "a");
	cr_assert_str_eq(s.names[1], "");
	cr_assert_str_eq(s.names[2], "c");
	cr_assert(s.addr[0] == a && s.addr[1] == b && s.addr[2] == c);
	cr_assert(s.size[0] == 4096 && s.size[1] == 8192 && s.size[2] == 4096);

	struct seen all = {.stop_at = -1};
	cr_assert_eq(mnemo_region_foreach(p, MNEMO_FOREACH_ALL, see_region,
					  &all), 0);
	cr_assert_gt(all.n, 3);
	for (int i = 1; i < all.n; i++)
		cr_assert_lt(all.addr[i - 1], all.addr[i]);

	struct seen stop = {.stop_at = 2};
	cr_assert_eq(mnemo_region_foreach(p, 0, see_region, &stop), 42);
	cr_assert_eq(stop.n, 2);

	struct seen del = {.stop_at = -1, .pool = p};
	cr_assert_eq(mnemo_region_foreach(p, 0, see_region, &del), 0);
	cr_assert_eq(del.n, 3, "the walk goes on over the list it took");
	cr_assert_eq(mnemo_region_find(p, "a", &a, NULL), -ENOENT);

	cr_assert_eq(mnemo_region_foreach(p, 2, see_region, &s), -EINVAL);
	cr_assert_eq(mnemo_region_foreach(p, 0, NULL, &s), -EINVAL);
	cr_assert_eq(mnemo_region_foreach(NULL, 0, see_region, &s), -EINVAL);
	mnemo_pool_close(&p);
}

static int see_root(const char *name, void *ptr, void *arg)
{
	struct seen *s = arg;
	cr_assert_lt(s->n, 8);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->addr[s->n++] = ptr;
	return 0;
}

Test(pool, roots_are_listed_and_info_counts_them)
{
	const char *path = t_path("roots");
	t_create(path, 4 << 20);
	mnemo_pool *p = t_open(path, 0);
	void *r;
	cr_assert_eq(mnemo_region_create(p, "r", 4096, &r), 0);
	cr_assert_eq(mnemo_root_set(p, "one", r), 0);
	cr_assert_eq(mnemo_root_set(p, "two", (char *)r + 8), 0);
	cr_assert_eq(mnemo_root_set(p, "gone", r), 0);
	cr_assert_eq(mnemo_root_delete(p, "gone"), 0);
	struct seen s = {.stop_at = -1};
	cr_assert_eq(mnemo_root_foreach(p, see_root, &s), 0);
	cr_assert_eq(s.n, 2);
	int one = strcmp(s.names[0], "one") == 0 ? 0 : 1;
	cr_assert_str_eq(s.names[one], "one");
	cr_assert_str_eq(s.names[1 - one], "two");
	cr_assert_eq(s.addr[one], r);
	cr_assert_eq(s.addr[1 - one], (char *)r + 8);
	cr_assert_eq(mnemo_root_foreach(p, NULL, NULL), -EINVAL);

	struct mnemo_pool_info in;
	cr_assert_eq(mnemo_pool_info(p, &in, sizeof(in)), 0);
	cr_assert_eq(in.roots, 2);
	cr_assert_eq(in.regions, 1);
	cr_assert_eq(in.region_bytes, 4096);
	cr_assert_eq(in.base, (uint64_t)(uintptr_t)mnemo_pool_base(p));
	cr_assert_eq(in.size, mnemo_pool_size(p));
	cr_assert_eq(in.max, mnemo_pool_max(p));
	cr_assert_eq(in.format_major, 6);
	cr_assert_gt(in.region_slots, 0);
	cr_assert_gt(in.root_slots, 0);
	cr_assert_eq(mnemo_pool_info(p, &in, sizeof(in) - 1), -EINVAL);
	mnemo_pool_close(&p);
}
