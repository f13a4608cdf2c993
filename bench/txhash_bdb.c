/*
 * txhash_bdb.c -- the hash-table upsert benchmark on Berkeley DB: a
 * transactional environment (DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
 * DB_INIT_MPOOL, default durability: the log is written and fsync'ed at
 * every commit) with its home on /dev/shm, one DB_HASH database, and one
 * transaction per upsert (txn_begin, DB->put, commit).
 *
 * Keys, values, the preload (--batch keys per transaction) and the key
 * sequence are those of txhash_mnemo and txhash_pmdk; the hash table is
 * Berkeley DB's own.  Flushes and fences are not counted (n/a).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <db.h>

#include "common.h"

static struct bench_opts O;

static void check(int rc, const char *what)
{
	if (rc)
		bench_die(&O, "%s: %s", what, db_strerror(rc));
}

static int put(DB *db, DB_TXN *txn, uint64_t key, const unsigned char *val)
{
	DBT k, v;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = &key;
	k.size = sizeof(key);
	v.data = (void *)val;
	v.size = (u_int32_t)O.vsize;
	return db->put(db, txn, &k, &v, 0);
}

static int rm_one(const char *p, const struct stat *st, int type,
		  struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &O, NULL);
	bench_one_thread(&O);
	if (O.fence_ns)
		bench_die(&O, "--fence-ns: not supported for Berkeley DB");

	char home[4096];
	snprintf(home, sizeof(home), "%s",
		 bench_path(&O, "txhash-bdb-XXXXXX"));
	if (!mkdtemp(home))
		bench_die(&O, "mkdtemp %s: %s", home, strerror(errno));

	DB_ENV *env;
	check(db_env_create(&env, 0), "db_env_create");
	env->set_errfile(env, stderr);
	env->set_errpfx(env, O.prog);
	/* A cache that holds the whole table: at least 256 MiB, and twice
	 * the raw key + value bytes of the key space. */
	uint64_t cache = 2 * O.keyspace * (O.vsize + 64);
	if (cache < ((uint64_t)256 << 20))
		cache = (uint64_t)256 << 20;
	check(env->set_cachesize(env, (u_int32_t)(cache >> 30),
				 (u_int32_t)(cache & ((1u << 30) - 1)), 1),
	      "set_cachesize");
	check(env->open(env, home,
			DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
				DB_INIT_MPOOL,
			0600),
	      "DB_ENV->open");

	DB *db;
	check(db_create(&db, env, 0), "db_create");
	check(db->set_h_nelem(db, (u_int32_t)O.keyspace), "set_h_nelem");
	/* Page size: the one that served each value size best here (4, 8 and
	 * 16 KiB tried): 4 KiB up to 256-byte values, else 16 KiB, where a
	 * 1 KiB value is no "big item" kept on overflow pages.
	 * $BENCH_BDB_PAGESIZE overrides (0: Berkeley DB's default). */
	u_int32_t pagesize = O.vsize <= 256 ? 4096 : 16384;
	const char *ps = getenv("BENCH_BDB_PAGESIZE");
	if (ps && *ps)
		pagesize = (u_int32_t)strtoul(ps, NULL, 0);
	if (pagesize)
		check(db->set_pagesize(db, pagesize), "set_pagesize");
	check(db->open(db, NULL, "txhash.db", NULL, DB_HASH,
		       DB_CREATE | DB_AUTO_COMMIT, 0600),
	      "DB->open");
	check(db->get_pagesize(db, &pagesize), "get_pagesize");

	int vmaj, vmin, vpatch;
	db_version(&vmaj, &vmin, &vpatch);
	printf("INFO bdb_version=%d.%d.%d pagesize=%u cache_mib=%llu\n", vmaj,
	       vmin, vpatch, pagesize, (unsigned long long)(cache >> 20));

	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.preload;) {
		DB_TXN *txn;
		check(env->txn_begin(env, NULL, &txn, 0), "txn_begin");
		for (uint64_t j = 0; j < O.batch && i < O.preload; j++, i++) {
			uint64_t key = bench_key(i);
			bench_fill_value(val, O.vsize, key, 0);
			check(put(db, txn, key, val), "DB->put");
		}
		check(txn->commit(txn, 0), "DB_TXN->commit");
	}
	uint64_t tpre = bench_now_ns() - t0;
	if (!O.quiet)
		printf("bdb: environment %s, %llu keys preloaded in %.2f s "
		       "(%llu per transaction)\n",
		       home, (unsigned long long)O.preload, (double)tpre / 1e9,
		       (unsigned long long)O.batch);

	struct bench_seq q;
	bench_seq_init(&q, &O);
	uint64_t retries = 0;
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < O.ops; i++) {
		uint64_t key = bench_key(bench_seq_next(&q));
		bench_fill_value(val, O.vsize, key, i + 1);
		for (;;) {
			DB_TXN *txn;
			check(env->txn_begin(env, NULL, &txn, 0), "txn_begin");
			int rc = put(db, txn, key, val);
			if (rc == DB_LOCK_DEADLOCK) {
				check(txn->abort(txn), "DB_TXN->abort");
				retries++;
				continue;
			}
			check(rc, "DB->put");
			check(txn->commit(txn, 0), "DB_TXN->commit");
			break;
		}
	}
	uint64_t ns = bench_now_ns() - t0;

	/* Check: the keys present are the preloaded and inserted ones, and
	 * the values are well formed. */
	uint64_t expect = bench_expected_inserts(&O), present = 0;
	for (uint64_t i = 0; i < O.keyspace; i++) {
		uint64_t key = bench_key(i);
		DBT k, v;
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = &key;
		k.size = sizeof(key);
		int rc = db->get(db, NULL, &k, &v, 0);
		if (rc == DB_NOTFOUND)
			continue;
		check(rc, "DB->get");
		present++;
		if (v.size != O.vsize ||
		    !bench_value_ok(v.data, O.vsize, key))
			bench_die(&O, "bad value for key %llu",
				  (unsigned long long)i);
	}
	if (present != O.preload + expect)
		bench_die(&O, "%llu keys present, expected %llu",
			  (unsigned long long)present,
			  (unsigned long long)(O.preload + expect));
	if (retries)
		fprintf(stderr, "bdb: %llu deadlock retries\n",
			(unsigned long long)retries);

	bench_result(&O, "bdb", O.ops, ns, -1, -1,
		     (int64_t)(present - O.preload));
	free(val);
	check(db->close(db, 0), "DB->close");
	check(env->close(env, 0), "DB_ENV->close");
	if (!O.keep)
		nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
