/* tls: OpenSSL sessions over memory BIOs. See tls.h for the contract. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plaintext is encrypted in slices of this size, and the records drained after each, so the
 * write BIO never holds more than one slice of ciphertext on top of what out holds. */
#define SEAL_SLICE (64 * 1024)

struct tls_ctx {
    SSL_CTX *ssl;
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the client, owned by ssl */
    BIO *wbio; /* ciphertext to the client, owned by ssl */
    char error[256];
};

bool tls_enabled(const config_t *cfg)
{
    return cfg->tls || cfg->tls_verify || cfg->tls_cert;
}

/* OpenSSL's most recent reason, or fallback when its queue is empty. */
static void ssl_reason(char *out, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e) {
        ERR_error_string_n(e, out, len);
        ERR_clear_error();
    } else {
        snprintf(out, len, "%s", fallback);
    }
}

static int ctx_fail(tls_ctx_t *ctx, char *err, size_t errlen, const char *fmt, const char *file)
{
    char why[256];
    ssl_reason(why, sizeof why, "unknown error");
    char what[512];
    snprintf(what, sizeof what, fmt, file);
    snprintf(err, errlen, "%s: %s", what, why);
    tls_ctx_free(ctx);
    return STZ_ECONFIG;
}

int tls_ctx_new(const config_t *cfg, tls_ctx_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->tls_cert || !cfg->tls_key) {
        snprintf(err, errlen, "TLS needs a certificate and a key (--tlscert, --tlskey)");
        return STZ_ECONFIG;
    }
    ERR_clear_error();
    tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "TLS: out of memory");
        return STZ_ENOMEM;
    }
    ctx->ssl = SSL_CTX_new(TLS_server_method());
    if (!ctx->ssl) return ctx_fail(ctx, err, errlen, "TLS: cannot create a context%s", "");
    SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
    /* Idle connections give their record buffers back; renegotiation is a DoS lever only. */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->tls_cert) != 1)
        return ctx_fail(ctx, err, errlen, "TLS: cannot load certificate \"%s\"", cfg->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            return ctx_fail(ctx, err, errlen, "TLS: key \"%s\" does not match the certificate",
                            cfg->tls_key);
        return ctx_fail(ctx, err, errlen, "TLS: cannot load key \"%s\"", cfg->tls_key);
    }
    if (SSL_CTX_check_private_key(ctx->ssl) != 1)
        return ctx_fail(ctx, err, errlen, "TLS: key \"%s\" does not match the certificate",
                        cfg->tls_key);
    if (cfg->tls_ca_cert) {
        if (SSL_CTX_load_verify_locations(ctx->ssl, cfg->tls_ca_cert, NULL) != 1)
            return ctx_fail(ctx, err, errlen, "TLS: cannot load CA certificate \"%s\"",
                            cfg->tls_ca_cert);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_cert);
        if (names) SSL_CTX_set_client_CA_list(ctx->ssl, names);
    } else if (cfg->tls_verify) {
        /* nats-server verifies against the system's roots when no CA is given. */
        SSL_CTX_set_default_verify_paths(ctx->ssl);
    }
    if (cfg->tls_verify)
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    *out = ctx;
    return 0;
}

void tls_ctx_free(tls_ctx_t *ctx)
{
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

tls_conn_t *tls_conn_new(tls_ctx_t *ctx)
{
    tls_conn_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void tls_conn_free(tls_conn_t *t)
{
    if (!t) return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

bool tls_conn_ready(const tls_conn_t *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *tls_conn_error(const tls_conn_t *t)
{
    return t->error[0] ? t->error : "unknown error";
}

/* Moves whatever the engine wrote into out. */
static int drain(tls_conn_t *t, buf_t *out)
{
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (pending == 0) return TLS_OK;
    if (buf_try_reserve(out, pending) != 0) return STZ_ENOMEM;
    int n = BIO_read(t->wbio, out->data + out->len, (int)pending);
    if (n > 0) out->len += (size_t)n;
    return TLS_OK;
}

static int fail(tls_conn_t *t, int ssl_err)
{
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        snprintf(t->error, sizeof t->error, "client certificate: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else if (ssl_err == SSL_ERROR_SYSCALL) {
        snprintf(t->error, sizeof t->error, "unexpected end of the TLS stream");
        ERR_clear_error();
    } else {
        ssl_reason(t->error, sizeof t->error, "TLS protocol error");
    }
    return STZ_EPROTO;
}

int tls_conn_read(tls_conn_t *t, const char *in, size_t n, char *scratch, size_t cap,
                  tls_plain_fn fn, void *arg, buf_t *out)
{
    ERR_clear_error();
    if (n > 0 && BIO_write(t->rbio, in, (int)n) != (int)n) {
        ssl_reason(t->error, sizeof t->error, "out of memory");
        return STZ_ENOMEM;
    }
    int cap_i = cap > (size_t)1 << 30 ? 1 << 30 : (int)cap;
    for (;;) {
        int r = SSL_read(t->ssl, scratch, cap_i);
        int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        /* Handshake messages, alerts and tickets go out whatever happened. */
        if (drain(t, out) != TLS_OK) return STZ_ENOMEM;
        if (r > 0) {
            if (fn(arg, scratch, (size_t)r) != 0) return TLS_STOPPED;
            continue;
        }
        switch (err) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE: /* memory BIOs take every write; nothing to wait for */
            return TLS_OK;
        case SSL_ERROR_ZERO_RETURN:
            return TLS_CLOSED;
        default:
            return fail(t, err);
        }
    }
}

int tls_conn_write(tls_conn_t *t, const char *p, size_t n, buf_t *out)
{
    ERR_clear_error();
    while (n > 0) {
        int slice = n > SEAL_SLICE ? SEAL_SLICE : (int)n;
        int w = SSL_write(t->ssl, p, slice);
        if (w <= 0) return fail(t, SSL_get_error(t->ssl, w));
        if (drain(t, out) != TLS_OK) return STZ_ENOMEM;
        p += w;
        n -= (size_t)w;
    }
    return TLS_OK;
}
