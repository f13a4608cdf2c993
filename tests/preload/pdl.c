/*
 * pdl.c -- a dlopen'd library with persistent globals (libpv).
 *
 *   pdl LIB        bump its counter, close it, open it again and bump
 *                  again: prints both results
 *   pdl LIB keep   have it keep a 4 KiB block from malloc
 *   pdl LIB free   take that block, grow it with realloc, check it and
 *                  free it, all from this program (not the library)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEPT 4096

static void *sym(void *h, const char *name)
{
	void *f = h ? dlsym(h, name) : NULL;
	if (!f)
		fprintf(stderr, "pdl: %s: %s\n", name, dlerror());
	return f;
}

static int bump(const char *path)
{
	void *h = dlopen(path, RTLD_NOW);
	int (*f)(void) = (int (*)(void))sym(h, "lib_bump");
	int v = f ? f() : -1;
	if (h)
		dlclose(h);
	return v;
}

static int keep(void *h)
{
	int (*f)(size_t) = (int (*)(size_t))sym(h, "lib_keep");
	return f && f(KEPT) == 0 ? puts("kept") < 0 : 1;
}

/* The block came from the persistent heap: realloc and free here must
 * reach the interposer, whichever way this program's calls are bound. */
static int take(void *h)
{
	char *(*f)(void) = (char *(*)(void))sym(h, "lib_take");
	char *p = f ? f() : NULL;
	if (!p)
		return 1;
	char *q = realloc(p, 4 * KEPT);
	if (!q)
		return 1;
	for (size_t i = 0; i < KEPT; i++)
		if (q[i] != 'k')
			return 1;
	memset(q + KEPT, 'g', 3 * KEPT);
	free(q);
	return puts("freed") < 0;
}

int main(int argc, char **argv)
{
	if (argc == 2) {
		int a = bump(argv[1]);
		int b = bump(argv[1]);
		printf("%d %d\n", a, b);
		return a < 0 || b < 0;
	}
	if (argc != 3)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	int rc = strcmp(argv[2], "keep") == 0 ? keep(h)
		 : strcmp(argv[2], "free") == 0 ? take(h)
						: 2;
	dlclose(h);
	return rc;
}
