/* harness_certs: a throw-away CA with a server certificate (localhost, 127.0.0.1) and a client
 * certificate, made with the openssl CLI in a temp dir, for the tests of TLS (it_tls: stanzad's
 * client port; it_stan_ns_auth: stanzad as a TLS client of a nats-server). */
#ifndef STANZA_HARNESS_CERTS_H
#define STANZA_HARNESS_CERTS_H
#include <limits.h>

struct hcerts {
    char dir[PATH_MAX - 64]; /* the temp dir with the PEM files */
    char ca[PATH_MAX], srv_cert[PATH_MAX], srv_key[PATH_MAX], cli_cert[PATH_MAX], cli_key[PATH_MAX];
};

/* Makes the CA and both certificates (P-256 keys, valid 2 days); CHECKs. */
void hcerts_make(struct hcerts *c);
/* Removes the temp dir. */
void hcerts_remove(struct hcerts *c);

#endif
