/*
 * mnemoctl.c -- the command-line tool of Mnemosyne (see mnemoctl(1)).
 *
 * Subcommands live in one table (name, usage, handler); each handler gets
 * the arguments after its name and returns the process exit status: 0
 * done (a pool healthy), 1 problems found, 2 could not run (a wrong
 * subcommand or argument, which prints the usage, or a pool that cannot
 * be opened; why, on stderr).  The tool never aborts on bad input.  The
 * pool commands are pool_cmds.c and pool_show.c; `devices` lives in
 * devices_ndctl.c or, built without libndctl, devices_none.c.
 */
#include <stdio.h>
#include <string.h>

#include "devices.h"
#include "pool_cmds.h"

struct subcommand {
	const char *name;
	const char *args;  /* usage of the arguments, "" if none */
	const char *help;  /* one line */
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
};

static int cmd_devices(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct subcommand g_cmds[] = {
	{"create", "[--size S] [--max S] [--addr A] [--backend B] POOL",
	 "create a pool", cmd_create},
	{"info", "[--json] POOL", "the pool's header, size and tables",
	 cmd_info},
	{"regions", "[--json] [--all] POOL", "list the regions", cmd_regions},
	{"roots", "[--json] POOL", "list the named roots", cmd_roots},
	{"stat", "[--json] POOL", "heap statistics and fragmentation",
	 cmd_stat},
	{"dump", "(--region N | --root N) [--offset O] [--length L] [--raw] POOL",
	 "the bytes of a region or root object", cmd_dump},
	{"check", "[--json] POOL", "verify a pool without writing it",
	 cmd_check},
	{"repair", "[--no-backup] POOL",
	 "back up, recover and collect; say what cannot be fixed", cmd_repair},
	{"crashtest",
	 "--pool POOL --check CMD [--tear word|line] [--seeds N] [--max N]"
	 " -- PROG [ARGS]",
	 "crash PROG at each persist point, check the pool with CMD",
	 cmd_crashtest},
	{"set", "--max S POOL", "raise the pool's growth limit", cmd_set},
	{"gc", "[--json] POOL", "collect leaked heap blocks, say what it reclaimed",
	 cmd_gc},
	{"rm", "POOL", "delete a pool (refuses a file that is not one)",
	 cmd_rm},
	{"devices", "", "list persistent-memory (NVDIMM/DAX) devices", cmd_devices},
	{"help", "", "show this help", cmd_help},
};
#define NCMDS (sizeof(g_cmds) / sizeof(g_cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: mnemoctl <command> [args]\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++) {
		fprintf(f, "  %-8s %s\n", g_cmds[i].name, g_cmds[i].help);
		if (*g_cmds[i].args)
			fprintf(f, "           %s\n", g_cmds[i].args);
	}
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
