/*
 * dl.c -- objects loaded after start-up: dlopen binds the sections of
 * whatever it loaded, dlclose forgets the bindings of what it unloaded.
 *
 * Limits, documented in libmnemo-preload(7):
 *  - the object's constructors run inside dlopen, before its section is
 *    bound, so they see the section's initial (volatile) values;
 *  - glibc resolves a bare library name against the RUNPATH of dlopen's
 *    caller, which is now this wrapper: give a path (or LD_LIBRARY_PATH)
 *    for libraries found through a RUNPATH.
 */
#include <dlfcn.h>
#include <stddef.h>

#include "preload.h"

static void *(*g_dlopen)(const char *, int);
static int (*g_dlclose)(void *);

static void resolve(void)
{
	t_inside++;
	if (!g_dlopen)
		g_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT,
							       "dlopen");
	if (!g_dlclose)
		g_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
	t_inside--;
}

PRELOAD_API void *dlopen(const char *file, int mode)
{
	resolve();
	void *h = g_dlopen(file, mode);
	/* A dlopen before our constructor is covered by its scan. */
	if (h && file && g_started && !g_forked)
		sections_bind_all();
	return h;
}

PRELOAD_API int dlclose(void *h)
{
	resolve();
	int rc = g_dlclose(h);
	if (rc == 0 && g_pool && !g_forked) /* a child's locks may be held */
		sections_forget_gone();
	return rc;
}
