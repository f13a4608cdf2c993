/*
 * kmod_pool.c -- libmnemo's `kmod` backend in the guest (run by
 * tests/vm/kmod_pool.sh).  Every check asserts; exit 1 on the first
 * failure, naming it.
 *
 *   kmod_pool write POOL PAGES SEED    create POOL with MNEMO_BACKEND=kmod,
 *                                      fill a region, reopen and verify
 *   kmod_pool fill POOL PAGES SEED     open POOL (kmod), overwrite the region
 *   kmod_pool verify POOL PAGES SEED BACKEND
 *                                      open with MNEMO_BACKEND=kmod, expect
 *                                      BACKEND ("kmod", or "file" when
 *                                      /dev/mnemo is absent), verify
 *   kmod_pool grow POOL MIB SEED       create POOL at 8 MiB (kmod), allocate
 *                                      MIB heap blocks of 1 MiB, so that the
 *                                      pool grows (MNEMO_IOC_RESIZE), mark
 *                                      them, reopen and verify
 *   kmod_pool growverify POOL MIB SEED BACKEND
 *                                      verify the blocks with BACKEND
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "mnemosyne.h"
#include "../../kmod/uapi/mnemo.h"

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, " (last error: %s)\n",              \
				mnemo_errormsg());                           \
			exit(1);                                             \
		}                                                            \
	} while (0)

static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + i + 1;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

/* Evictions so far, or 0 without /dev/mnemo. */
static uint64_t evictions(void)
{
	struct mnemo_kstat st;
	int fd = open("/dev/mnemo", O_RDONLY);
	uint64_t n = 0;

	if (fd >= 0 && ioctl(fd, MNEMO_IOC_STAT, &st) == 0)
		n = st.evictions;
	if (fd >= 0)
		close(fd);
	return n;
}

/* Open POOL (MNEMO_BACKEND=kmod is set) and check the backend it got. */
static mnemo_pool *open_as(const char *path, const char *backend)
{
	mnemo_pool *p = NULL;

	CHECK(mnemo_pool_open(path, MNEMO_BACKEND_AUTO, &p) == 0, "open %s",
	      path);
	CHECK(!strcmp(mnemo_pool_backend(p), backend), "backend is %s, "
	      "want %s", mnemo_pool_backend(p), backend);
	return p;
}

static void verify(mnemo_pool *p, size_t words, uint64_t seed)
{
	uint64_t *w;
	size_t size;

	CHECK(mnemo_region_find(p, "data", (void **)&w, &size) == 0,
	      "region data not found");
	CHECK(size >= words * 8, "region data has %zu bytes", size);
	for (size_t i = 0; i < words; i++)
		CHECK(w[i] == word(seed, i), "word %zu: %#llx", i,
		      (unsigned long long)w[i]);
}

static int cmd_write(const char *path, size_t pages, uint64_t seed)
{
	size_t words = pages * 4096 / 8;
	mnemo_pool *p = NULL;
	uint64_t *w, ev0 = evictions();

	mnemo_pool_delete(path);
	CHECK(mnemo_pool_create(path, pages * 4096 + (4u << 20), NULL,
				MNEMO_BACKEND_AUTO, &p) == 0, "create %s", path);
	CHECK(!strcmp(mnemo_pool_backend(p), "kmod"), "backend is %s",
	      mnemo_pool_backend(p));
	CHECK(mnemo_region_create(p, "data", words * 8, (void **)&w) == 0,
	      "region create");
	for (size_t i = 0; i < words; i++)
		w[i] = word(seed, i);
	mnemo_persist(w, words * 8);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	p = open_as(path, "kmod");
	verify(p, words, seed);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	printf("kmod_pool: %s: %zu pages written and verified through the "
	       "kmod backend, %llu evictions meanwhile\n", path, pages,
	       (unsigned long long)(evictions() - ev0));
	return 0;
}

static int cmd_fill(const char *path, size_t pages, uint64_t seed)
{
	size_t words = pages * 4096 / 8, size;
	mnemo_pool *p = open_as(path, "kmod");
	uint64_t *w;

	CHECK(mnemo_region_find(p, "data", (void **)&w, &size) == 0 &&
	      size >= words * 8, "region data");
	for (size_t i = 0; i < words; i++)
		w[i] = word(seed, i);
	mnemo_persist(w, words * 8);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	return 0;
}

static int cmd_verify(const char *path, size_t pages, uint64_t seed,
		      const char *backend)
{
	mnemo_pool *p = open_as(path, backend);

	verify(p, pages * 4096 / 8, seed);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	printf("kmod_pool: %s: verified with the %s backend\n", path, backend);
	return 0;
}

#define GROW_STRIDE (64u << 10) /* one marked word per 64 KiB */

static void grow_check(mnemo_pool *p, size_t mib, uint64_t seed)
{
	uint64_t **ptrs;
	size_t size;

	CHECK(mnemo_region_find(p, "ptrs", (void **)&ptrs, &size) == 0 &&
	      size >= mib * 8, "region ptrs");
	for (size_t i = 0; i < mib; i++)
		for (size_t j = 0; j < (1u << 20) / 8; j += GROW_STRIDE / 8)
			CHECK(ptrs[i][j] == word(seed, i << 20 | j),
			      "block %zu word %zu: %#llx", i, j,
			      (unsigned long long)ptrs[i][j]);
}

static int cmd_grow(const char *path, size_t mib, uint64_t seed)
{
	mnemo_pool *p = NULL;
	uint64_t **ptrs;

	mnemo_pool_delete(path);
	CHECK(mnemo_pool_create(path, 8u << 20, NULL, MNEMO_BACKEND_AUTO,
				&p) == 0, "create %s", path);
	CHECK(!strcmp(mnemo_pool_backend(p), "kmod"), "backend is %s",
	      mnemo_pool_backend(p));
	CHECK(mnemo_region_create(p, "ptrs", mib * 8, (void **)&ptrs) == 0,
	      "region ptrs");
	for (size_t i = 0; i < mib; i++) {
		uint64_t *b = mnemo_heap_alloc(p, 1u << 20, 0, 0);
		CHECK(b, "block %zu of 1 MiB (pool at %zu bytes)", i,
		      mnemo_pool_size(p));
		for (size_t j = 0; j < (1u << 20) / 8; j += GROW_STRIDE / 8) {
			b[j] = word(seed, i << 20 | j);
			mnemo_persist(&b[j], 8);
		}
		ptrs[i] = b;
		mnemo_persist(&ptrs[i], 8);
	}
	size_t grown = mnemo_pool_size(p);
	CHECK(grown > mib << 20, "pool is %zu bytes", grown);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	p = open_as(path, "kmod");
	CHECK(mnemo_pool_size(p) == grown, "reopened at %zu bytes, not %zu",
	      mnemo_pool_size(p), grown);
	grow_check(p, mib, seed);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	printf("kmod_pool: %s: grew from 8 MiB to %zu MiB through the kmod "
	       "backend; %zu blocks verified after reopening\n", path,
	       grown >> 20, mib);
	return 0;
}

static int cmd_grow_verify(const char *path, size_t mib, uint64_t seed,
			   const char *backend)
{
	mnemo_pool *p = open_as(path, backend);

	grow_check(p, mib, seed);
	CHECK(mnemo_pool_close(&p) == 0, "close");
	printf("kmod_pool: %s: grown pool verified with the %s backend\n",
	       path, backend);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("MNEMO_BACKEND", "kmod", 1);
	if (argc == 5 && !strcmp(argv[1], "write"))
		return cmd_write(argv[2], strtoul(argv[3], NULL, 0),
				 strtoull(argv[4], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], strtoul(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], strtoul(argv[3], NULL, 0),
				  strtoull(argv[4], NULL, 0), argv[5]);
	if (argc == 5 && !strcmp(argv[1], "grow"))
		return cmd_grow(argv[2], strtoul(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "growverify"))
		return cmd_grow_verify(argv[2], strtoul(argv[3], NULL, 0),
				       strtoull(argv[4], NULL, 0), argv[5]);
	fprintf(stderr, "usage: see the comment at the top of kmod_pool.c\n");
	return 2;
}
