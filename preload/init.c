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

/* $MNEMO_POOL, else one pool per program, next to libmnemo's default
 * pool: DIR/preload/NAME-HASH.pool (DIR = the default pool's directory,
 * see mnemo_pool_default_path), keyed by the executable's path so that
 * programs never share data or contend for one pool's lock. */
static const char *pool_path(char *buf, size_t n)
{
	const char *def = mnemo_pool_default_path(); /* $MNEMO_POOL first */
	const char *env = getenv("MNEMO_POOL");
	if (env && *env)
		return def;
	char exe[PATH_MAX];
	preload_exe(exe, sizeof(exe));
	const char *base = strrchr(exe, '/'), *slash = strrchr(def, '/');
	base = base ? base + 1 : exe;
	int dir = slash ? (int)(slash - def) : 0;
	snprintf(buf, n, "%.*s/preload/%s-%016llx.pool", dir, def, base,
		 (unsigned long long)preload_hash(exe));
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

static void say_pool(const char *path);

int preload_pool(void)
{
	if (g_pool)
		return 0;
	if (g_pool_failed || g_forked)
		return -1;
	char buf[PATH_MAX + 64];
	const char *path = pool_path(buf, sizeof(buf));
	if (plt_unbind_owners() != 0) {
		g_pool_failed = 1;
		preload_fail("cannot open pool %s: a call slot bound to "
			     "glibc's free could not be restored (mprotect "
			     "failed; MNEMO_PRELOAD_DIRECT=0 avoids this)", path);
		return -1;
	}
	t_inside++;
	int rc = open_pool(path);
	t_inside--;
	if (rc) {
		g_pool_failed = 1;
		preload_fail("cannot open pool %s: %s", path, mnemo_errormsg());
		return -1;
	}
	g_pool_lo = (uintptr_t)mnemo_pool_base(g_pool);
	g_pool_span = mnemo_pool_size(g_pool);
	if (g_verbose)
		say_pool(path);
	return 0;
}

/* MNEMO_PRELOAD_VERBOSE: the heap at open and at exit. */
static void say_pool(const char *path)
{
	struct mnemo_heap_stats st;
	preload_say("pool %s (%s backend)", path, mnemo_pool_backend(g_pool));
	if (mnemo_heap_stats(g_pool, &st) == 0 && st.collected)
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
	if (mnemo_heap_stats(g_pool, &st) == 0)
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

/* libmnemo has turned every pool mapping of the child into a private copy
 * (a private view) and dropped its lock; the child allocates from glibc and
 * never frees into the persistent heap (see libmnemo-preload(7)). */
static void fork_child(void)
{
	g_forked = 1;
	g_route = ROUTE_OFF;
}

/* Routing needs the pool whatever is loaded; sections open it when the
 * scan finds one (sections_bind_all). */
static int routing_needs_pool(void)
{
	const char *s = getenv("MNEMO_SBRK");
	return g_want != ROUTE_OFF || (s && strcmp(s, "pool") == 0);
}

__attribute__((constructor)) static void preload_init(void)
{
	t_inside++;
	parse_config();
	/* The TM ABI slots fill at the first TM call (itm.S's slow path). */
	pthread_atfork(NULL, NULL, fork_child);
	if (!routing_needs_pool() || preload_pool() == 0)
		sections_bind_all();
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
