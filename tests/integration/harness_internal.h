/* harness_internal: what the harness*.c files share among themselves; not for tests (their
 * contract is harness.h). */
#ifndef STANZA_HARNESS_INTERNAL_H
#define STANZA_HARNESS_INTERNAL_H

/* Waits a short step between polls of something with no event to wait on (a child's exit, a port
 * starting to listen, a file growing). */
void harness_short_wait(void);

/* A waitpid status as the harness reports it: the exit code, or 128+signal; -1 otherwise. */
int harness_wait_status(int wstatus);

#endif
