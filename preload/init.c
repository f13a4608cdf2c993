/*
 * init.c -- configuration, the pool, start-up and fork.
 *
 * Start-up order (the constructor below): read MNEMO_*; if anything needs
 * persistence (a loaded object has a mnemo_persistent section, or
 * MNEMO_MALLOC / MNEMO_SBRK route memory to the pool) open the pool, which
 * recovers it; bind the sections; only then switch malloc routing on.
 * Until then every allocation goes to glibc, so calls that arrive before
 * the constructor (another library's constructor, dlsym calling calloc)
 * simply get volatile memory, which free() later recognises by address.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

enum route g_route = ROUTE_OFF;
size_t g_min;
uintptr_t g_pool_lo, g_pool_span;
mnemo_pool *g_pool;
int g_forked;
int g_started;
uint64_t g_routed;
__thread int t_inside __attribute__((tls_model("initial-exec")));

static enum route g_want;  /* MNEMO_MALLOC, applied once the pool is open */
static int g_fallback; /* MNEMO_FALLBACK=volatile */
int g_verbose;
static int g_pool_failed;
/* Where messages go: stderr, or with MNEMO_PRELOAD_VERBOSE a duplicate of
 * it, so that the report at exit survives programs that close stderr in
 * an atexit handler (coreutils do). */
static int g_errfd = STDERR_FILENO;

static void vsay(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "mnemo-preload: ");
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* write(2), not stdio: no allocation, no lock another thread holds */
	if (write(g_errfd, buf, (size_t)n) < 0)
		return;
}

void preload_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

void preload_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	if (g_fallback) {
		preload_say("MNEMO_FALLBACK=volatile: continuing with volatile "
			    "memory");
		return;
	}
	preload_say("stopping (set MNEMO_FALLBACK=volatile to run with "
		    "volatile memory instead)");
	_exit(1);
}

void preload_exe(char *buf, size_t n)
{
	ssize_t k = readlink("/proc/self/exe", buf, n - 1);
	buf[k > 0 ? k : 0] = '\0';
}

uint64_t preload_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* "123", "64K", "16M", "1G" -> bytes; -1 if malformed. */
long long preload_parse_size(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	int shift = *end == 'K' || *end == 'k' ? 10
		    : *end == 'M' || *end == 'm' ? 20
		    : *end == 'G' || *end == 'g' ? 30
						 : 0;
	if (shift)
		end++;
	if (*end || v > (LLONG_MAX >> shift))
		return -1;
	return v << shift;
}

static void parse_route(void)
{
	const char *s = getenv("MNEMO_MALLOC");
	if (!s || !*s || strcmp(s, "off") == 0)
		return;
	if (strcmp(s, "all") == 0) {
		g_want = ROUTE_ALL;
		return;
	}
	long long v = strncmp(s, "min=", 4) == 0 ? preload_parse_size(s + 4) : -1;
	if (v < 0) {
		preload_say("MNEMO_MALLOC=%s: expected off, all or min=SIZE "
			    "(e.g. min=4K); using off", s);
		return;
	}
	g_want = ROUTE_MIN;
	g_min = (size_t)v;
}

static void parse_config(void)
{
	const char *f = getenv("MNEMO_FALLBACK");
	g_fallback = f && strcmp(f, "volatile") == 0;
	if (f && *f && !g_fallback && strcmp(f, "exit") != 0)
		preload_say("MNEMO_FALLBACK=%s: expected exit or volatile", f);
	const char *v = getenv("MNEMO_PRELOAD_VERBOSE");
	g_verbose = v && *v && strcmp(v, "0") != 0;
	int fd = g_verbose ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd >= 0)
		g_errfd = fd;
	parse_route();
}

/*
 * Which pool a process gets (libmnemo-preload(7), PROCESS TREES):
 *
 *   $MNEMO_POOL if set, else the program's own pool, next to libmnemo's
 *   default pool: DIR/preload/NAME-HASH.pool, keyed by the executable's
 *   path so that programs never share data.
 *
 * A pool is open in one process at a time.  When it is busy:
 *   - a process that only routes malloc (no persistent variables, no
 *     persistent break) takes the next free one of its program's own pool
 *     and instance pools NAME-HASH.2.pool ... NAME-HASH.16.pool, and if
 *     all are busy runs with volatile memory: it never stops for a pool;
 *   - a process whose persistent variables or break live in the pool uses
 *     its program's own pool if $MNEMO_POOL is held by an ancestor (it is a
 *     helper started by the pool's owner), and otherwise stops with a
 *     message naming the holder (MNEMO_FALLBACK=volatile runs it volatile).
 */
#define INSTANCES 16

static char g_path_env[PATH_MAX];  /* $MNEMO_POOL, or "" */
static char g_path_prog[PATH_MAX]; /* the program's own pool */
static int g_substitute;           /* g_pool is not the pool first chosen */

/* Called once by the constructor, single-threaded: libmnemo's default
 * path names $MNEMO_POOL first, so it is hidden for the call. */
static void pool_paths(void)
{
	const char *env = getenv("MNEMO_POOL");
	if (env && *env)
		snprintf(g_path_env, sizeof(g_path_env), "%s", env);
	if (*g_path_env)
		unsetenv("MNEMO_POOL");
	const char *def = mnemo_pool_default_path();
	char exe[PATH_MAX];
	preload_exe(exe, sizeof(exe));
	const char *base = strrchr(exe, '/'), *slash = strrchr(def, '/');
	base = base ? base + 1 : exe;
	int dir = slash ? (int)(slash - def) : 0;
	if (snprintf(g_path_prog, sizeof(g_path_prog),
		     "%.*s/preload/%s-%016llx", dir, def, base,
		     (unsigned long long)preload_hash(exe)) >=
	    (int)sizeof(g_path_prog) - 16) /* room for ".16.pool" */
		g_path_prog[0] = '\0'; /* too long: the open says so */
	if (*g_path_env)
		setenv("MNEMO_POOL", g_path_env, 1);
}

/* The program's pool (k = 1) or instance pool k, in buf. */
static const char *instance_path(char *buf, size_t n, int k)
{
	if (!*g_path_prog)
		snprintf(buf, n, "%s", "");
	else if (k == 1)
		snprintf(buf, n, "%s.pool", g_path_prog);
	else
		snprintf(buf, n, "%s.%d.pool", g_path_prog, k);
	return buf;
}

/* With malloc routing, blocks a run never freed are unreachable garbage
 * at the next start unless a root reaches them: collect at every open. */
static int open_pool(const char *path)
{
	int set_gc = g_want != ROUTE_OFF && !getenv("MNEMO_HEAP_GC");
	if (set_gc)
		setenv("MNEMO_HEAP_GC", "always", 1);
	int rc = mnemo_pool_open(path, MNEMO_CREATE, &g_pool);
	if (set_gc)
		unsetenv("MNEMO_HEAP_GC");
	return rc;
}

static void say_pool(const char *path, const char *why);

/* Open path; 0, -EBUSY (held by another process), or another failure
 * after reporting it. */
static int try_pool(const char *path, const char *why)
{
	if (!*path) {
		g_pool_failed = 1;
		preload_fail("cannot name a pool for this program: its path is "
			     "too long (set MNEMO_POOL)");
		return -ENAMETOOLONG;
	}
	int rc = open_pool(path);
	if (rc == -EBUSY)
		return rc;
	if (rc) {
		g_pool_failed = 1;
		preload_fail("cannot open pool %s: %s", path, mnemo_errormsg());
		return rc;
	}
	g_pool_lo = (uintptr_t)mnemo_pool_base(g_pool);
	g_pool_span = mnemo_pool_max(g_pool); /* the window: it grows */
	if (g_verbose)
		say_pool(path, why);
	return 0;
}

/* "pid 123 (bash)", or "another process" if /proc/locks does not say. */
static const char *holder_name(pid_t pid, char *buf, size_t n)
{
	char comm[64];
	if (pid <= 0)
		return "another process";
	tree_comm(pid, comm, sizeof(comm));
	snprintf(buf, n, "pid %d (%s)", (int)pid, comm);
	return buf;
}

/* Routing only: the first free one of the program's pools; volatile
 * memory if all are busy. */
static int substitute_pool(const char *busy, pid_t holder)
{
	char path[PATH_MAX + 16], why[PATH_MAX + 128], who[96];
	for (int k = 1; k <= INSTANCES; k++) {
		instance_path(path, sizeof(path), k);
		if (strcmp(path, busy) == 0)
			continue;
		snprintf(why, sizeof(why), "%s is held by %s", busy,
			 holder_name(holder, who, sizeof(who)));
		int rc = try_pool(path, why);
		if (rc != -EBUSY) {
			g_substitute = rc == 0;
			return rc;
		}
	}
	g_pool_failed = 1;
	if (g_verbose)
		preload_say("pid %d: all %d pools of this program are in use: "
			    "malloc stays volatile", (int)getpid(), INSTANCES);
	return -1;
}

/* The pool holding this process's persistent data is busy. */
static int data_pool_busy(const char *path, pid_t holder)
{
	char why[PATH_MAX + 128], who[96], own[PATH_MAX + 16];
	holder_name(holder, who, sizeof(who));
	if (*g_path_env && strcmp(path, g_path_env) == 0 &&
	    tree_is_ancestor(holder)) {
		if (snprintf(why, sizeof(why), "MNEMO_POOL %s is held by %s, "
			     "which started this process", path, who) < 0)
			why[0] = '\0';
		int rc = try_pool(instance_path(own, sizeof(own), 1), why);
		if (rc != -EBUSY)
			return rc;
		path = own;
		holder_name(tree_holder(own), who, sizeof(who));
	}
	g_pool_failed = 1;
	preload_fail("pool %s is in use by %s, and this program's persistent "
		     "variables live there (one process at a time may have a "
		     "pool open): wait for that process to end, or give this "
		     "one another pool with MNEMO_POOL=PATH", path, who);
	return -1;
}

/* data: the process's persistent variables or break will live in the
 * pool, so a substitute will not do. */
int preload_pool(int data)
{
	if (g_pool && data && g_substitute) {
		preload_fail("persistent variables cannot be bound: this "
			     "process runs on a substitute pool (its own was "
			     "busy when it started)");
		return -1;
	}
	if (g_pool)
		return 0;
	if (g_pool_failed || g_forked)
		return -1;
	char buf[PATH_MAX + 16];
	const char *path = *g_path_env ? g_path_env
				       : instance_path(buf, sizeof(buf), 1);
	if (plt_unbind_owners() != 0) {
		g_pool_failed = 1;
		preload_fail("cannot open pool %s: a call slot bound to "
			     "glibc's free could not be restored (mprotect "
			     "failed; MNEMO_PRELOAD_DIRECT=0 avoids this)", path);
		return -1;
	}
	t_inside++;
	int rc = try_pool(path, *g_path_env ? "MNEMO_POOL" : "its own");
	if (rc == -EBUSY) {
		pid_t holder = tree_holder(path);
		rc = data ? data_pool_busy(path, holder)
			  : substitute_pool(path, holder);
	}
	t_inside--;
	return rc ? -1 : 0;
}

/* MNEMO_PRELOAD_VERBOSE: what this process got, and the heap at open
 * and at exit. */
static void say_pool(const char *path, const char *why)
{
	struct mnemo_heap_stats st;
	preload_say("pid %d: pool %s (%s; %s backend)", (int)getpid(), path,
		    why, mnemo_pool_backend(g_pool));
	if (mnemo_heap_stats(g_pool, &st, sizeof(st)) == 0 && st.collected)
		preload_say("collection at open: %llu blocks (%llu bytes) "
			    "reclaimed", (unsigned long long)st.reclaimed_blocks,
			    (unsigned long long)st.reclaimed_bytes);
}

__attribute__((destructor)) static void preload_fini(void)
{
	struct mnemo_heap_stats st;
	if (!g_verbose || !g_pool || g_forked)
		return;
	t_inside++;
	if (mnemo_heap_stats(g_pool, &st, sizeof(st)) == 0)
		preload_say("at exit: %llu persistent allocations made, %llu "
			    "blocks (%llu bytes) live",
			    (unsigned long long)g_routed,
			    (unsigned long long)st.live_blocks,
			    (unsigned long long)st.live_bytes);
	t_inside--;
}

/* ---- the GCC TM ABI: fill itm.S's slots from libmnemo ---- */

extern void *mnemo_preload_itm_slots[];

static const struct itm_sym {
	const char *name;
	int ver;
} g_itm[] = {
#define ITM(name, ver) {#name, ver},
#include "itm_syms.h"
#undef ITM
};

/* Called by itm.S at the first TM call (any thread). */
__attribute__((visibility("hidden"))) void mnemo_preload_itm_resolve(void)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	t_inside++;
	pthread_mutex_lock(&mu);
	Dl_info info;
	void *h = NULL;
	if (dladdr((void *)mnemo_errormsg, &info) && info.dli_fname)
		h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	for (size_t i = 0; h && i < sizeof(g_itm) / sizeof(g_itm[0]); i++) {
		if (__atomic_load_n(&mnemo_preload_itm_slots[i], __ATOMIC_ACQUIRE))
			continue;
		void *f = dlvsym(h, g_itm[i].name,
				 g_itm[i].ver == 10 ? "LIBITM_1.0" : "LIBITM_1.1");
		if (!f) {
			preload_say("libmnemo lacks %s; cannot run "
				    "transactions", g_itm[i].name);
			abort(); /* a build defect, not user input */
		}
		__atomic_store_n(&mnemo_preload_itm_slots[i], f, __ATOMIC_RELEASE);
	}
	if (!h) {
		preload_say("cannot find libmnemo for the TM ABI: %s", dlerror());
		abort();
	}
	pthread_mutex_unlock(&mu);
	t_inside--;
}

/* ---- fork ---- */

/* libmnemo has moved a snapshot of every pool over its mappings and let go
 * of the pool file (see its fork.cc): the child allocates from glibc and
 * never frees into its copy of the persistent heap (libmnemo-preload(7)). */
static void fork_child(void)
{
	g_forked = 1;
	g_route = ROUTE_OFF;
	if (g_verbose && g_pool)
		preload_say("pid %d: fork child of pid %d: a private snapshot "
			    "of the pool; allocates from glibc", (int)getpid(),
			    (int)getppid());
}

static int sbrk_in_pool(void)
{
	const char *s = getenv("MNEMO_SBRK");
	return s && strcmp(s, "pool") == 0;
}

__attribute__((constructor)) static void preload_init(void)
{
	t_inside++;
	parse_config();
	pool_paths();
	/* The TM ABI slots fill at the first TM call (itm.S's slow path). */
	pthread_atfork(NULL, NULL, fork_child);
	sections_bind_all(); /* opens the pool if an object has a section */
	if (g_want != ROUTE_OFF || sbrk_in_pool())
		preload_pool(sbrk_in_pool());
	if (g_pool)
		brk_init();
	/* Routing starts only now, and only with a pool. */
	__atomic_store_n(&g_route, g_pool ? g_want : ROUTE_OFF,
			 __ATOMIC_RELEASE);
	if (g_route == ROUTE_OFF) /* for good: calls may skip the wrappers */
		plt_bind();
	g_started = 1;
	t_inside--;
}
