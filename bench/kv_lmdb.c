/*
 * kv_lmdb.c -- the key-value benchmark's work (kv.h) on LMDB: the keys in
 * one database (MDB_INTEGERKEY, LMDB's own B+tree, not kv.h's table), one
 * write transaction per overwrite (mdb_txn_begin, mdb_put, mdb_txn_commit),
 * durable at commit (LMDB's default: the data and meta pages are synced).
 * Environment in a fresh directory under --dir.
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"

static struct bench_opts O;
static MDB_env *g_env;
static MDB_dbi g_dbi;

static void check(int rc, const char *what)
{
	if (rc)
		bench_die(&O, "%s: %s", what, mdb_strerror(rc));
}

static void put(MDB_txn *txn, uint64_t key, const unsigned char *val)
{
	MDB_val k = {sizeof(key), &key}, v = {O.vsize, (void *)val};
	check(mdb_put(txn, g_dbi, &k, &v, 0), "mdb_put");
}

/* One overwrite: one write transaction, durable at commit. */
static void overwrite(uint64_t key, const unsigned char *val)
{
	MDB_txn *txn;
	check(mdb_txn_begin(g_env, NULL, 0, &txn), "mdb_txn_begin");
	put(txn, key, val);
	check(mdb_txn_commit(txn), "mdb_txn_commit");
}

static const struct kv_system g_lmdb = {overwrite, NULL, NULL};

static void verify(void)
{
	MDB_txn *txn;
	check(mdb_txn_begin(g_env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i);
		MDB_val k = {sizeof(key), &key}, v;
		if (mdb_get(txn, g_dbi, &k, &v) || v.mv_size != O.vsize ||
		    !bench_value_ok(v.mv_data, O.vsize, key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
	}
	mdb_txn_abort(txn);
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	bench_one_thread(&O);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/kv-lmdb-%ld", O.dir, (long)getpid());
	if (mkdir(dir, 0700))
		bench_die(&O, "mkdir %s", dir);
	check(mdb_env_create(&g_env), "mdb_env_create");
	check(mdb_env_set_mapsize(g_env, 4 * O.preload * (O.vsize + 64) +
					       ((size_t)64 << 20)),
	      "mdb_env_set_mapsize");
	check(mdb_env_open(g_env, dir, 0, 0600), "mdb_env_open");
	MDB_txn *txn;
	check(mdb_txn_begin(g_env, NULL, 0, &txn), "mdb_txn_begin");
	check(mdb_dbi_open(txn, NULL, MDB_INTEGERKEY, &g_dbi), "mdb_dbi_open");
	check(mdb_txn_commit(txn), "mdb_txn_commit");
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	for (uint64_t i = 0; i < O.preload;) {
		check(mdb_txn_begin(g_env, NULL, 0, &txn), "mdb_txn_begin");
		for (uint64_t j = 0; j < O.batch && i < O.preload; j++, i++) {
			bench_fill_value(val, O.vsize, bench_key(i), 0);
			put(txn, bench_key(i), val);
		}
		check(mdb_txn_commit(txn), "mdb_txn_commit");
	}

	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(&O, &g_lmdb, &ops, &lines, &fences);
	verify();
	bench_result(&O, "lmdb", ops, ns, lines, fences, 0);
	free(val);
	mdb_env_close(g_env);
	if (!O.keep) {
		char f[4200];
		snprintf(f, sizeof(f), "%s/data.mdb", dir);
		unlink(f);
		snprintf(f, sizeof(f), "%s/lock.mdb", dir);
		unlink(f);
		rmdir(dir);
	}
	return 0;
}
