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

#endif
