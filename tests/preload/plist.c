/*
 * plist.c -- a list built with plain malloc, reachable only from a
 * persistent global.  Under MNEMO_MALLOC=all it survives a clean restart
 * (and the collection at open must keep it).
 *
 *   plist add N    append N nodes (values count+1 ...), then check
 *   plist check    check: length == count, values 1..count in order
 *   plist fork     child changes the list and the count; parent checks
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnemosyne.h"

struct node {
	struct node *next;
	long value;
	char pad[40];
};

MNEMO_PERSISTENT struct node *head;
MNEMO_PERSISTENT long count;

static int check(void)
{
	long n = 0;
	for (struct node *p = head; p; p = p->next) {
		if (p->value != count - n ||
		    strcmp(p->pad, "payload") != 0) {
			printf("bad node %ld: value %ld\n", n, p->value);
			return 1;
		}
		n++;
	}
	printf("length=%ld count=%ld\n", n, count);
	return n != count;
}

static void add(long k)
{
	for (long i = 0; i < k; i++) {
		struct node *p = malloc(sizeof(*p));
		if (!p)
			exit(3);
		p->value = count + 1;
		strcpy(p->pad, "payload");
		p->next = head;
		head = p;
		count++;
		free(malloc(100)); /* garbage that must not confuse anything */
	}
}

/* The child sees the list, changes it and frees nodes; none of that may
 * reach the parent or the pool. */
static int fork_check(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct node *p = head;
		head = p ? p->next : NULL;
		free(p);
		count--;
		add(3);
		int rc = check();
		fflush(stdout);
		_exit(rc);
	}
	int st;
	waitpid(pid, &st, 0);
	return !WIFEXITED(st) || WEXITSTATUS(st) != 0 || check();
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "add") == 0)
		add(atol(argv[2]));
	if (argc > 1 && strcmp(argv[1], "fork") == 0)
		return fork_check();
	return check();
}
