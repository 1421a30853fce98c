/*
 * json/json_build: setting the members of a json-c object, with one failure check at the end.
 *
 * json-c reports running out of memory twice over when a member is set: the value's maker
 * (json_object_new_string and its kin) returns NULL, which json_object_object_add then stores
 * as JSON null without complaint, and json_object_object_add itself returns -1 (keeping no
 * value). The documents Tally builds this way are stored (a wallet's terms and its recurring
 * rule, a plan's update merged over the stored plan, a transaction's details), so a result
 * left unchecked at any one member stored a document that silently lacked a field or held null
 * where a value was meant. A builder records the first failure and ignores every later member,
 * as util/buf does for appends: a function sets its members one after the other and checks
 * json_build_failed once, before it uses what it built, then reports its own out-of-memory
 * failure as it already does. Each call says whether NULL is a failure (a value that had to be
 * made) or JSON null on purpose.
 *
 * Ownership: the builder borrows its object (the caller keeps it, and frees it on failure as
 * on success); json_build_take takes the caller's reference to a value, json_build_share takes
 * a reference of its own; keys are copied.
 * Threads: any; one builder and its object on one thread at a time.
 */
#ifndef TALLY_JSON_JSON_BUILD_H
#define TALLY_JSON_JSON_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/arena.h"

struct json_object;

struct json_build {
    struct json_object *obj; /* borrowed: the object whose members are set */
    bool failed;             /* sticky: a member could not be set; later ones are not */
};

/* A builder over `obj`, a JSON object (borrowed); NULL (its making failed) starts failed. */
void json_build_init(struct json_build *b, struct json_object *obj);

/* Each call sets obj[key] (replacing a member of that name, in its place), or records a
 * failure. Nothing is set once the builder has failed. */

/* A string; NULL (text that could not be made) is a failure. */
void json_build_string(struct json_build *b, const char *key, const char *s);
/* A string, or JSON null on purpose when `s` is NULL. */
void json_build_string_or_null(struct json_build *b, const char *key, const char *s);
void json_build_bool(struct json_build *b, const char *key, bool v);
void json_build_int64(struct json_build *b, const char *key, int64_t v);
/* JSON null, on purpose. */
void json_build_null(struct json_build *b, const char *key);
/*
 * A value the caller made: the caller's reference is taken (released here if the member cannot
 * be set, or the builder has already failed). NULL is a failure: the value's making failed.
 */
void json_build_take(struct json_build *b, const char *key, struct json_object *v);
/*
 * A value the caller borrows from elsewhere (a member of a request body or of a stored
 * document), shared under a reference of the object's own; NULL is JSON null, as json-c holds
 * a null member.
 */
void json_build_share(struct json_build *b, const char *key, struct json_object *v);

/* Whether a member could not be set: the object is then not the one meant, and is not used. */
bool json_build_failed(const struct json_build *b);

/* The object's JSON text, as json-c writes it with `flags` (JSON_C_TO_STRING_*), copied into
 * `a`; NULL if the builder failed or memory ran out. */
const char *json_build_text(const struct json_build *b, int flags, struct arena *a);

#endif
