/*
 * preload.h -- libmnemo-preload.so, the LD_PRELOAD interposer: shared
 * state of its parts.
 *
 *   init.c     configuration, which pool, start-up and fork
 *   tree.c     who holds a busy pool: the process tree around us
 *   malloc.c   the malloc family, routed by MNEMO_MALLOC
 *   brk.c      sbrk/brk, optionally on a persistent break (MNEMO_SBRK)
 *   section.c  binding `mnemo_persistent` sections to regions
 *   elfsec.c   reading an object's section and symbols from its file
 *   dl.c       dlopen/dlclose: binding objects loaded later
 *   plt.c      routing off: callers' PLT slots straight to glibc
 *   itm.S      the GCC TM ABI, forwarded to libmnemo
 *
 * Recursion rule: a thread with t_inside > 0 is running libmnemo or the
 * interposer's own code on behalf of an interposed call; every allocation
 * it makes goes to glibc (__libc_*), so libmnemo never re-enters itself
 * through `malloc`.  libmnemo's own objects never call `malloc` at all
 * (libmnemo/src/base/sysalloc.cc); t_inside covers what libc and libstdc++ do
 * for it (stdio, dlopen, thread-local destructor lists).
 */
#ifndef MNEMO_PRELOAD_H
#define MNEMO_PRELOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mnemosyne.h"

#define PRELOAD_API __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)

/* glibc's allocator, under names the interposer does not replace. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void __libc_free(void *p);

enum route {
	ROUTE_OFF,  /* everything to glibc */
	ROUTE_ALL,  /* everything to the persistent heap */
	ROUTE_MIN,  /* blocks of at least g_min bytes */
};

/* Set once by init, before other threads exist; read without locks. */
extern enum route g_route;
extern size_t g_min;
extern uintptr_t g_pool_lo, g_pool_span; /* the pool's window, or 0 */
extern mnemo_pool *g_pool;               /* NULL until opened */
extern int g_forked;                     /* we are a fork child */
extern int g_started;                    /* the constructor has run */
extern uint64_t g_routed;  /* persistent allocations (MNEMO_PRELOAD_VERBOSE) */
extern int g_verbose;      /* MNEMO_PRELOAD_VERBOSE=1 */
extern __thread int t_inside __attribute__((tls_model("initial-exec")));

/* init.c */
/* Open the pool if not yet open (init.c says which).  data: persistent
 * variables or the break will live there.  0, or -1: no pool, after
 * reporting why (and exiting, if persistence was needed and the user did
 * not ask for a volatile fallback). */
int preload_pool(int data);
/* Report once per message key on stderr: "mnemo-preload: ...". */
void preload_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure the program cannot continue past unless MNEMO_FALLBACK=volatile:
 * says why, then exits (status 1) or returns. */
void preload_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "123", "64K", "16M", "1G" -> bytes; -1 if malformed. */
long long preload_parse_size(const char *s);
/* The running executable's path (/proc/self/exe); "" if unreadable. */
void preload_exe(char *buf, size_t n);
/* FNV-1a of a string: keys of per-program pools and regions. */
uint64_t preload_hash(const char *s);

/* section.c: bind every loaded object's section not yet bound, opening
 * the pool if there is one. */
void sections_bind_all(void);
/* dlclose: forget bindings whose object is gone. */
void sections_forget_gone(void);

/* malloc.c: our wrappers' own addresses (for plt.c). */
void *preload_malloc(size_t n);
void *preload_calloc(size_t k, size_t n);
void preload_free(void *p);
void *preload_realloc(void *p, size_t n);

/* plt.c: with routing off, point loaded objects' PLT slots for malloc
 * and calloc (and free and realloc while no pool is open) at glibc. */
void plt_bind(void);
/* Before a pool opens: free/realloc slots back to the wrappers.  0, or -1
 * if a slot could not be restored (the pool must then stay closed). */
int plt_unbind_owners(void);

/* tree.c: the process tree around a busy pool (reads /proc) */
pid_t tree_holder(const char *path);   /* who holds its flock; 0 unknown */
int tree_is_ancestor(pid_t pid);       /* pid started us (transitively) */
void tree_comm(pid_t pid, char *buf, size_t n); /* its command name */

/* brk.c */
void brk_init(void);

/* A persistent pointer: inside the pool's window. */
static inline int is_pool_ptr(const void *p)
{
	return (uintptr_t)p - g_pool_lo < g_pool_span;
}

#endif
