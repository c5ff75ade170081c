/* tls: TLS for client connections, with OpenSSL over memory BIOs.
 *
 * The engine never touches a socket: the connection feeds it the ciphertext it read and gets
 * back plaintext; it hands it plaintext to send and gets back the records to write. So the
 * event loop never blocks on TLS, and the socket I/O, output accounting and slow-consumer rules
 * stay the connection's. One tls_ctx_t per server (certificates, verification); one tls_conn_t
 * per client. Without TLS configured none of this is created or called. */
#ifndef STANZA_TLS_H
#define STANZA_TLS_H
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "err.h"

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/* Outcomes of tls_conn_read and tls_conn_write. Failures are negative err.h codes: STZ_EPROTO
 * (a handshake or record error; tls_conn_error says which), STZ_ENOMEM (an output buffer could
 * not grow). */
enum {
    TLS_OK = 0,
    TLS_STOPPED = 1, /* the plaintext handler asked to stop */
    TLS_CLOSED = 2,  /* the peer sent close_notify */
};

/* True when cfg asks for TLS on the client port: --tls, --tlsverify, or a certificate given. */
bool tls_enabled(const config_t *cfg);

/* Loads the certificate, key and CA named in cfg. Returns 0, or STZ_ECONFIG (STZ_ENOMEM) with
 * a message naming the file and OpenSSL's reason in err. */
int tls_ctx_new(const config_t *cfg, tls_ctx_t **out, char *err, size_t errlen);
void tls_ctx_free(tls_ctx_t *ctx);

/* A server-side session awaiting the client's handshake; NULL when out of memory. */
tls_conn_t *tls_conn_new(tls_ctx_t *ctx);
void tls_conn_free(tls_conn_t *t);
/* True once the handshake completed. */
bool tls_conn_ready(const tls_conn_t *t);
/* Why the last call failed (OpenSSL's reason, or the certificate verification error). */
const char *tls_conn_error(const tls_conn_t *t);

/* Called with each piece of decrypted input; non-zero stops. */
typedef int (*tls_plain_fn)(void *arg, const char *p, size_t n);

/* Takes n bytes of ciphertext, drives the handshake and hands every byte of plaintext they
 * complete to fn, decrypted into scratch (cap bytes; it may be the buffer `in` points into: the
 * input is copied into the engine first). Records the engine has to send (handshake messages,
 * alerts, session tickets) are appended to out. */
int tls_conn_read(tls_conn_t *t, const char *in, size_t n, char *scratch, size_t cap,
                  tls_plain_fn fn, void *arg, buf_t *out);

/* Encrypts n bytes of plaintext, appending the records to out. Only after the handshake. */
int tls_conn_write(tls_conn_t *t, const char *p, size_t n, buf_t *out);

#endif
