/*
 * mnemoctl.c -- the command-line tool of Mnemosyne (see mnemoctl(1)).
 *
 * Subcommands live in one table (name, usage, handler); each handler gets
 * the arguments after its name and returns the process exit status.  The
 * tool never aborts on bad input: a wrong subcommand or argument prints
 * the usage and exits 2; a failure of the system prints why and exits 1.
 * `devices` lives in devices_ndctl.c or, built without libndctl,
 * devices_none.c (devices.h).
 */
#include <stdio.h>
#include <string.h>

#include "devices.h"

#define EXIT_USAGE 2

struct subcommand {
	const char *name;
	const char *args;  /* usage of the arguments, "" if none */
	const char *help;  /* one line */
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
};

static int cmd_devices(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct subcommand g_cmds[] = {
	{"devices", "", "list persistent-memory (NVDIMM/DAX) devices", cmd_devices},
	{"help", "", "show this help", cmd_help},
};
#define NCMDS (sizeof(g_cmds) / sizeof(g_cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: mnemoctl <command> [args]\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %-10s %s\n", g_cmds[i].name, g_cmds[i].args,
			g_cmds[i].help);
}

static int cmd_help(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	usage(stdout);
	return 0;
}

static int cmd_devices(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "mnemoctl devices: takes no arguments\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	return devices_list();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		argv[1] = (char *)"help";
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(argv[1], g_cmds[i].name) == 0)
			return g_cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mnemoctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
