/* subject: NATS subject and queue-name validation.
 * A subject is tokens separated by '.'; no token is empty; no whitespace or control bytes.
 * '*' alone is a one-token wildcard, '>' alone and last is a tail wildcard. */
#ifndef STANZA_SUBJECT_H
#define STANZA_SUBJECT_H
#include <stdbool.h>
#include <stddef.h>

/* Valid for SUB: wildcards allowed. */
bool subject_valid(const char *s, size_t len);
/* Valid for PUB: no wildcards ('*' or '>' as a whole token). */
bool subject_valid_literal(const char *s, size_t len);
/* Queue names: non-empty, no whitespace or control bytes. */
bool subject_valid_queue(const char *s, size_t len);
/* A streaming channel name (NSS's rule): a literal subject without '/'. */
bool subject_valid_channel(const char *s, size_t len);
/* A name the streaming engine builds subjects from (the cluster ID, the discover prefix), as NSS
 * checks it: a literal subject in which '*' and '>' appear nowhere, not even inside a token. */
bool subject_valid_name(const char *s, size_t len);

#endif
