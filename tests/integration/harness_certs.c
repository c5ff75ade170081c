/* harness_certs: see harness_certs.h. */
#include "harness_certs.h"

#include <stdio.h>

#include "harness.h"
#include "test.h"

static void openssl(const struct hcerts *c, const char *const *args)
{
    const char *argv[32] = {"/usr/bin/openssl"};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/openssl.log", c->dir);
    int st = hproc_run(argv, c->dir, log, log, 30000);
    if (st != 0) {
        hfile_dump("openssl", log);
        CHECK_EQ_INT(st, 0);
    }
}

/* A P-256 key and a certificate for cn signed by the CA, with the given extensions. */
static void make_cert(const struct hcerts *c, const char *name, const char *cn, const char *ext)
{
    char subj[64], key[64], csr[64], pem[64], extfile[64], path[PATH_MAX];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(key, sizeof key, "%s-key.pem", name);
    snprintf(csr, sizeof csr, "%s.csr", name);
    snprintf(pem, sizeof pem, "%s.pem", name);
    snprintf(extfile, sizeof extfile, "%s.ext", name);
    snprintf(path, sizeof path, "%s/%s", c->dir, extfile);
    CHECK(hfile_write(path, ext) == 0);
    const char *req[] = {"req",    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-nodes", "-keyout", key,  "-out",     csr,
                         "-subj",  subj,      NULL};
    openssl(c, req);
    const char *sign[] = {"x509",   "-req",       "-in",
                          csr,      "-CA",        "ca.pem",
                          "-CAkey", "ca-key.pem", "-CAcreateserial",
                          "-out",   pem,          "-days",
                          "2",      "-extfile",   extfile,
                          NULL};
    openssl(c, sign);
}

void hcerts_make(struct hcerts *c)
{
    CHECK(hmkdtemp(c->dir, sizeof c->dir) == 0);
    const char *ca_args[] = {"req",    "-x509",    "-newkey",
                             "ec",     "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes", "-keyout",  "ca-key.pem",
                             "-out",   "ca.pem",   "-days",
                             "2",      "-subj",    "/CN=Stanza Test CA",
                             NULL};
    openssl(c, ca_args);
    make_cert(c, "server", "localhost",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    make_cert(c, "client", "stanza-test-client", "extendedKeyUsage=clientAuth\n");
    snprintf(c->ca, sizeof c->ca, "%s/ca.pem", c->dir);
    snprintf(c->srv_cert, sizeof c->srv_cert, "%s/server.pem", c->dir);
    snprintf(c->srv_key, sizeof c->srv_key, "%s/server-key.pem", c->dir);
    snprintf(c->cli_cert, sizeof c->cli_cert, "%s/client.pem", c->dir);
    snprintf(c->cli_key, sizeof c->cli_key, "%s/client-key.pem", c->dir);
}

void hcerts_remove(struct hcerts *c)
{
    if (c->dir[0]) hremove_tree(c->dir);
    c->dir[0] = '\0';
}
