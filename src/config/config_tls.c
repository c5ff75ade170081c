/* config_tls: the tls section of the config file, written as nats-server writes it (and the
 * checks of -ns's URLs and client TLS files, config_validate_upstream):
 *
 *   tls:
 *     cert_file: server.pem
 *     key_file: server-key.pem
 *     ca_file: ca.pem      # CA for client certificates
 *     verify: true         # require and verify client certificates
 *
 * A tls section turns TLS on; "tls: true" with the flat keys (tls_cert, tls_key, tls_ca_cert,
 * tls_verify, as the flags name them) does the same. Files are checked when read, so a missing
 * one is reported with the line that names it. */
#include "config.h"
#include "config_private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool config_is_tls_section(const yaml_event_t *kev)
{
    return kev->type == YAML_SCALAR_EVENT &&
           strcasecmp((const char *)kev->data.scalar.value, "tls") == 0;
}

/* The section's keys and the settings they set. */
static const struct {
    const char *name;
    const char *setting;
    bool file;
} tls_keys[] = {
    {"cert_file", "tls_cert", true},
    {"key_file", "tls_key", true},
    {"ca_file", "tls_ca_cert", true},
    {"verify", "tls_verify", false},
};

static int check_file(const char *path, char *why, size_t len)
{
    if (access(path, R_OK) == 0) return 0;
    return config_failf(why, len, "cannot read \"%s\": %s", path, strerror(errno));
}

/* One "cert_file: server.pem" of the section. */
static int load_tls_pair(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    config_t *cfg = ctx;
    char kname[64], vtext[64], why[512];
    int kline = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT || config_has_nul(kev))
        return config_loader_fail(l, kline, "tls setting names must be plain words");
    config_printable(kname, sizeof kname, (const char *)kev->data.scalar.value);
    size_t i = 0;
    while (i < sizeof tls_keys / sizeof tls_keys[0] &&
           strcasecmp(tls_keys[i].name, (const char *)kev->data.scalar.value) != 0)
        i++;
    if (i == sizeof tls_keys / sizeof tls_keys[0])
        return config_loader_fail(l, kline,
                                  "unknown setting \"%s\" in tls (known: cert_file, key_file, "
                                  "ca_file, verify)",
                                  kname);
    yaml_event_t vev;
    const char *v;
    int rc = config_load_present(l, "tls ", kname, &vev, &v);
    if (rc < 0) return rc;
    int vline = config_line_of(&vev.start_mark);
    if (tls_keys[i].file && check_file(v, why, sizeof why) < 0)
        rc = config_loader_fail(l, vline, "tls %s: %s", kname, why);
    else if (config_set(cfg, tls_keys[i].setting, v, why, sizeof why) != 0)
        rc = config_loader_fail(l, vline, "invalid value \"%s\" for tls \"%s\": %s",
                                config_printable(vtext, sizeof vtext, v), kname, why);
    yaml_event_delete(&vev);
    return rc;
}

int config_load_tls(struct config_loader *l, config_t *cfg, const yaml_event_t *kev)
{
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    int line = config_line_of(&ev.start_mark);
    if (ev.type == YAML_SCALAR_EVENT && config_is_null(&ev)) {
        yaml_event_delete(&ev); /* an empty section, as store_limits allows */
        return 0;
    }
    if (ev.type == YAML_SCALAR_EVENT) {
        /* "tls: true": the flat form. */
        char vtext[64], why[128];
        const char *v = config_has_nul(&ev) ? "" : (const char *)ev.data.scalar.value;
        if (config_set(cfg, "tls", v, why, sizeof why) != 0)
            rc = config_loader_fail(l, line,
                                    "invalid value \"%s\" for \"tls\": %s (or a section with "
                                    "cert_file, key_file, ca_file, verify)",
                                    config_printable(vtext, sizeof vtext, v), why);
        yaml_event_delete(&ev);
        return rc;
    }
    if (ev.type != YAML_MAPPING_START_EVENT) {
        rc = config_loader_fail(l, line, "\"tls\" takes a section or a boolean, not %s",
                                config_node_kind(ev.type));
        yaml_event_delete(&ev);
        return rc;
    }
    yaml_event_delete(&ev);
    cfg->tls = true;
    return config_each_pair(l, load_tls_pair, cfg);
}

int config_validate_tls(const config_t *cfg, char *err, size_t errlen)
{
    if (!(cfg->tls || cfg->tls_verify || cfg->tls_cert)) return 0;
    char why[512];
    if (!cfg->tls_cert)
        return config_failf(err, errlen,
                            "tls: a server certificate is required (--tlscert, or cert_file in "
                            "the tls section)");
    if (!cfg->tls_key)
        return config_failf(
            err, errlen,
            "tls: a private key is required (--tlskey, or key_file in the tls section)");
    const char *files[] = {cfg->tls_cert, cfg->tls_key, cfg->tls_ca_cert};
    const char *names[] = {"certificate", "key", "CA certificate"};
    for (size_t i = 0; i < 3; i++) {
        if (files[i] && check_file(files[i], why, sizeof why) < 0)
            return config_failf(err, errlen, "tls %s: %s", names[i], why);
    }
    return 0;
}

int config_validate_upstream(const config_t *cfg, char *err, size_t errlen)
{
    const char *urls = cfg->nats_server_url;
    if (!urls || !*urls) {
        if (cfg->nats_creds || cfg->nats_secure || cfg->tls_client_cert || cfg->tls_client_key ||
            cfg->tls_client_cacert)
            return config_failf(err, errlen,
                                "credentials, secure and tls_client_* apply only with -ns "
                                "(nats_server_url)");
        return 0;
    }
    char why[512];
    if (config_check_url_list(urls, true, why, sizeof why) != 0)
        return config_failf(err, errlen, "nats_server_url (-ns): %s", why);
    if (cfg->cluster_listen || cfg->cluster_routes)
        return config_failf(err, errlen,
                            "--cluster and --routes route the embedded NATS server, which does "
                            "not run with -ns (nats_server_url)");
    if (!cfg->tls_client_cert != !cfg->tls_client_key)
        return config_failf(err, errlen, "tls_client_cert and tls_client_key go together");
    const char *files[] = {cfg->nats_creds, cfg->tls_client_cert, cfg->tls_client_key,
                           cfg->tls_client_cacert};
    const char *names[] = {"credentials", "tls_client_cert", "tls_client_key", "tls_client_cacert"};
    for (size_t i = 0; i < 4; i++) {
        if (files[i] && check_file(files[i], why, sizeof why) < 0)
            return config_failf(err, errlen, "%s: %s", names[i], why);
    }
    return 0;
}
