/*
 * kv_sqlite.c -- the key-value benchmark's work (kv.h) on SQLite: a table
 * kv(k INTEGER PRIMARY KEY, v BLOB) in WAL mode with synchronous=FULL
 * (durable at commit), one autocommit UPDATE per overwrite through a
 * prepared statement.  Database file under --dir.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"

static struct bench_opts O;
static sqlite3 *g_db;

static void check(int rc, int want, const char *what)
{
	if (rc != want)
		bench_die(&O, "%s: %s", what, sqlite3_errmsg(g_db));
}

static void exec(const char *sql)
{
	check(sqlite3_exec(g_db, sql, NULL, NULL, NULL), SQLITE_OK, sql);
}

static sqlite3_stmt *prepare(const char *sql)
{
	sqlite3_stmt *s;
	check(sqlite3_prepare_v2(g_db, sql, -1, &s, NULL), SQLITE_OK, sql);
	return s;
}

/* Run s with (value, key) bound. */
static void run(sqlite3_stmt *s, uint64_t key, const unsigned char *val)
{
	sqlite3_bind_blob(s, 1, val, (int)O.vsize, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)key);
	check(sqlite3_step(s), SQLITE_DONE, "step");
	if (sqlite3_changes(g_db) != 1)
		bench_die(&O, "key %llu: no row changed", (unsigned long long)key);
	sqlite3_reset(s);
}

static sqlite3_stmt *g_upd; /* the prepared UPDATE of the timed loop */

/* One overwrite: one autocommit UPDATE. */
static void overwrite(uint64_t key, const unsigned char *val)
{
	run(g_upd, key, val);
}

static const struct kv_system g_sqlite = {overwrite, NULL, NULL};

static void verify(void)
{
	sqlite3_stmt *s = prepare("SELECT v FROM kv WHERE k = ?1");
	for (uint64_t i = 0; i < O.preload; i++) {
		uint64_t key = bench_key(i);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)key);
		if (sqlite3_step(s) != SQLITE_ROW ||
		    (uint64_t)sqlite3_column_bytes(s, 0) != O.vsize ||
		    !bench_value_ok(sqlite3_column_blob(s, 0), O.vsize, key))
			bench_die(&O, "verify: key %llu missing or damaged",
				  (unsigned long long)i);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
}

int main(int argc, char **argv)
{
	kv_parse(argc, argv, &O, NULL);
	bench_one_thread(&O);
	char path[4096];
	snprintf(path, sizeof(path), "%s/kv-sqlite-%ld.db", O.dir,
		 (long)getpid());
	check(sqlite3_open(path, &g_db), SQLITE_OK, "sqlite3_open");
	exec("PRAGMA journal_mode=WAL");
	exec("PRAGMA synchronous=FULL");
	exec("CREATE TABLE kv(k INTEGER PRIMARY KEY, v BLOB)");
	unsigned char *val = malloc(O.vsize);
	if (!val)
		bench_die(&O, "out of memory");
	sqlite3_stmt *ins = prepare("INSERT INTO kv(v, k) VALUES(?1, ?2)");
	for (uint64_t i = 0; i < O.preload;) {
		exec("BEGIN");
		for (uint64_t j = 0; j < O.batch && i < O.preload; j++, i++) {
			bench_fill_value(val, O.vsize, bench_key(i), 0);
			run(ins, bench_key(i), val);
		}
		exec("COMMIT");
	}
	sqlite3_finalize(ins);

	g_upd = prepare("UPDATE kv SET v = ?1 WHERE k = ?2");
	uint64_t ops;
	double lines, fences;
	uint64_t ns = kv_timed_loop(&O, &g_sqlite, &ops, &lines, &fences);
	sqlite3_finalize(g_upd);
	verify();
	bench_result(&O, "sqlite", ops, ns, lines, fences, 0);
	free(val);
	check(sqlite3_close(g_db), SQLITE_OK, "sqlite3_close");
	if (!O.keep) {
		char f[4200];
		unlink(path);
		snprintf(f, sizeof(f), "%s-wal", path);
		unlink(f);
		snprintf(f, sizeof(f), "%s-shm", path);
		unlink(f);
	}
	return 0;
}
