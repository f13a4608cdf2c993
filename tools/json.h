/*
 * json.h -- the JSON mnemoctl prints with --json: one object per command,
 * written as it goes.  Invariant: `depth` open containers, first[d] true
 * until container d has a member (so the writer knows where a comma goes).
 */
#ifndef MNEMOCTL_JSON_H
#define MNEMOCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
};

/* key is the member's name inside an object, NULL inside an array or at
 * the top. */
void json_open(struct json *j, const char *key, char bracket);
void json_close(struct json *j, char bracket); /* the last one ends the line */
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_dbl(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, bool v);

#endif
