/*
 * pdl.c -- dlopen a library with a persistent global, bump it, close it,
 * open it again and bump again: prints both results.
 */
#include <dlfcn.h>
#include <stdio.h>

static int bump(const char *path)
{
	void *h = dlopen(path, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return -1;
	}
	int (*f)(void) = (int (*)(void))dlsym(h, "lib_bump");
	int v = f ? f() : -1;
	dlclose(h);
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int a = bump(argv[1]);
	int b = bump(argv[1]);
	printf("%d %d\n", a, b);
	return a < 0 || b < 0;
}
