/*
 * json.c -- a JSON writer for mnemoctl's --json output (json.h).  Strings
 * are escaped as RFC 8259 requires; bytes that are not UTF-8 are the
 * caller's (pool names are checked by the library).
 */
#include "json.h"

#include <inttypes.h>

static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* The comma and the key that go before a member. */
static void member(struct json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth - 1])
			fputc(',', j->f);
		j->first[j->depth - 1] = false;
	}
	if (key) {
		quoted(j->f, key);
		fputc(':', j->f);
	}
}

void json_open(struct json *j, const char *key, char bracket)
{
	member(j, key);
	fputc(bracket, j->f);
	if (j->depth < JSON_MAX_DEPTH)
		j->first[j->depth++] = true;
}

void json_close(struct json *j, char bracket)
{
	fputc(bracket, j->f);
	if (j->depth > 0 && --j->depth == 0)
		fputc('\n', j->f);
}

void json_str(struct json *j, const char *key, const char *v)
{
	member(j, key);
	quoted(j->f, v);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	member(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_dbl(struct json *j, const char *key, double v)
{
	member(j, key);
	fprintf(j->f, "%.6g", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->f);
}
