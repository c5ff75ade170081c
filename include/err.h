/* err: the one error space, in libuv's style. A function that can fail returns 0 (or a count)
 * on success and a negative STZ_E* code on failure; stz_strerror names the code. Where an errno
 * value means the same thing the code is -errno, so a failed system call's -errno passes
 * through unchanged; conditions of our own are numbered from -4000 down. A caller that needs a
 * sentence for a person (a config error naming file:line) gets it in a buffer alongside the code.
 * The NATS protocol's errors (EUNKNOWNOP, ECTRLLINE, EMAXPAYLOAD) are named in nats-server's
 * words, capitals included: they are the -ERR texts clients are sent. */
#ifndef STANZA_ERR_H
#define STANZA_ERR_H
#include <errno.h>

/* X(name, value, message) */
#define STZ_ERRORS(X)                                                                              \
    X(ENOENT, -ENOENT, "not found")                                                                \
    X(EIO, -EIO, "i/o error")                                                                      \
    X(ENOMEM, -ENOMEM, "out of memory")                                                            \
    X(EBUSY, -EBUSY, "busy")                                                                       \
    X(EEXIST, -EEXIST, "already exists")                                                           \
    X(EINVAL, -EINVAL, "invalid argument")                                                         \
    X(ENOSPC, -ENOSPC, "no space left on device")                                                  \
    X(ERANGE, -ERANGE, "out of range")                                                             \
    X(E2BIG, -E2BIG, "too large")                                                                  \
    X(EPROTO, -EPROTO, "protocol error")                                                           \
    X(ECANCELED, -ECANCELED, "cancelled")                                                          \
    X(EUNKNOWNOP, -4001, "Unknown Protocol Operation")                                             \
    X(ECTRLLINE, -4002, "Maximum Control Line Exceeded")                                           \
    X(EMAXPAYLOAD, -4003, "Maximum Payload Violation")                                             \
    X(EBADARGS, -4004, "invalid arguments")                                                        \
    X(EBADPAYLOAD, -4005, "payload not terminated by CRLF")                                        \
    X(ESTOPPED, -4006, "stopped by the handler")                                                   \
    X(ECONFIG, -4007, "invalid configuration")                                                     \
    X(ENOTLEADER, -4008, "not the cluster's leader")

enum {
    STZ_OK = 0,
#define STZ_ERR_ENUM(name, value, msg) STZ_##name = (value),
    STZ_ERRORS(STZ_ERR_ENUM)
#undef STZ_ERR_ENUM
};

/* A static string for any code (an unknown one included); never NULL. */
const char *stz_strerror(int err);

#endif
