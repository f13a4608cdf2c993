/*
 * backend.c -- which SCM backend libmnemo picks, on a real DAX filesystem
 * and on one without DAX (run by tests/vm/dax.sh in the guest).
 *
 *   backend DAXDIR NODAXDIR
 *
 * On DAXDIR (ext4 -o dax on an emulated NVDIMM): a pool created with the
 * dax backend reports "dax", a value stored and persisted there reads back
 * after reopening with the automatic choice, which picks "dax" too.
 * On NODAXDIR (tmpfs: MAP_SYNC fails with EOPNOTSUPP): the dax backend is
 * refused with -ENODEV and a message naming the reason, and the automatic
 * choice falls back to "file".  Exit 0 if all holds, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mnemosyne.h"

static int g_failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			printf("ok: " __VA_ARGS__);                          \
		} else {                                                     \
			printf("FAIL: " __VA_ARGS__);                        \
			printf("      (%s; last error: %s)\n", #cond,        \
			       mnemo_errormsg());                            \
			g_failed = 1;                                        \
		}                                                            \
		printf("\n");                                                \
	} while (0)

static void on_dax(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/backend-dax.pool", dir);
	mnemo_pool_delete(path);
	mnemo_pool *p = NULL;
	int rc = mnemo_pool_create(path, 2u << 20, NULL, MNEMO_BACKEND_DAX, &p);
	CHECK(rc == 0, "create with the dax backend on %s (rc %d)", dir, rc);
	if (rc)
		return;
	CHECK(strcmp(mnemo_pool_backend(p), "dax") == 0, "backend is %s",
	      mnemo_pool_backend(p));
	uint64_t *w;
	rc = mnemo_region_create(p, "w", 8, (void **)&w);
	CHECK(rc == 0, "region on the dax pool (rc %d)", rc);
	if (rc == 0)
		CHECK(mnemo_store64(w, 0x6d6e656d6f) == 0, "store64 + persist");
	mnemo_pool_close(&p);
	rc = mnemo_pool_open(path, MNEMO_BACKEND_AUTO, &p);
	CHECK(rc == 0, "reopen with the automatic backend (rc %d)", rc);
	if (rc)
		return;
	CHECK(strcmp(mnemo_pool_backend(p), "dax") == 0,
	      "automatic choice on DAX is %s", mnemo_pool_backend(p));
	CHECK(mnemo_region_find(p, "w", (void **)&w, NULL) == 0 &&
		      *w == 0x6d6e656d6f, "value reads back");
	mnemo_pool_close(&p);
	CHECK(mnemo_pool_delete(path) == 0, "delete");
}

static void off_dax(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/backend-nodax.pool", dir);
	mnemo_pool_delete(path);
	mnemo_pool *p = NULL;
	int rc = mnemo_pool_create(path, 2u << 20, NULL, MNEMO_BACKEND_FILE, &p);
	CHECK(rc == 0, "create with the file backend on %s (rc %d)", dir, rc);
	if (rc)
		return;
	mnemo_pool_close(&p);
	rc = mnemo_pool_open(path, MNEMO_BACKEND_DAX, &p);
	CHECK(rc == -ENODEV && p == NULL,
	      "dax backend on a non-DAX file is refused with -ENODEV (rc %d)", rc);
	CHECK(strstr(mnemo_errormsg(), "not on a DAX filesystem") != NULL,
	      "message: %s", mnemo_errormsg());
	if (p)
		mnemo_pool_close(&p);
	rc = mnemo_pool_open(path, MNEMO_BACKEND_AUTO, &p);
	CHECK(rc == 0, "automatic backend opens it (rc %d)", rc);
	if (rc)
		return;
	CHECK(strcmp(mnemo_pool_backend(p), "file") == 0,
	      "automatic choice off DAX is %s", mnemo_pool_backend(p));
	mnemo_pool_close(&p);
	CHECK(mnemo_pool_delete(path) == 0, "delete");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: backend DAXDIR NODAXDIR\n");
		return 2;
	}
	on_dax(argv[1]);
	off_dax(argv[2]);
	return g_failed;
}
