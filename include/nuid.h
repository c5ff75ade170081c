/* nuid: unguessable identifiers for the names the engine hands out (its server ID, subscription
 * ack inboxes, heartbeat and duplicate-check reply subjects, request subjects): every character is
 * drawn from the kernel's CSPRNG (getrandom), so seeing any number of them tells nothing about the
 * next. NATS's own nuid has a sequential tail (the next one is a few hundred guesses away from the
 * last); these have none: 22 characters of [0-9A-Za-z] are about 131 random bits.
 *
 * Not thread-safe: called from the loop thread only. */
#ifndef STANZA_NUID_H
#define STANZA_NUID_H

#define NUID_LEN 22

/* Writes NUID_LEN random characters and a NUL into out. Never fails: without a working source of
 * random bytes the process logs and aborts (as on running out of memory) rather than hand out a
 * name another client could guess. */
void nuid_next(char out[NUID_LEN + 1]);

/* A random name, allocated (the caller frees it): prefix, tag, NUID_LEN random characters, then
 * "." and tail when tail is not NULL. E.g. ("_INBOX.x.", "hb.", "client-1") gives
 * "_INBOX.x.hb.<random>.client-1". */
char *nuid_subject(const char *prefix, const char *tag, const char *tail);

#endif
