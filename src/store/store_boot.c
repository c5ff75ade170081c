/* store_boot: whether a store written without fsync survived (clustered mode).
 *
 * With a durable log (store_options_t.log_is_durable) LMDB runs without fsync: the Raft log
 * holds every committed entry, and the store is a copy that can be rebuilt from it. A process
 * crash loses nothing (the writes are in the kernel's page cache); a machine crash may leave the
 * data file damaged. The state file (STATE_FILE in the directory) says which: it names the boot
 * (the kernel's boot_id) in which the store was last opened and whether it was closed cleanly
 * (after a sync). Opened again after a machine restart without a clean close, the data file is
 * removed: the store starts empty and the log (with its snapshot) fills it again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store_private.h"

#define STATE_FILE "stanza.state"
#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"

static void boot_id(char out[64])
{
    const char *fake = getenv("STANZA_TEST_BOOT_ID"); /* tests: a machine restart */
    if (fake) {
        snprintf(out, 64, "%s", fake);
        return;
    }
    out[0] = '\0';
    FILE *f = fopen(BOOT_ID_FILE, "r");
    if (!f) return;
    if (!fgets(out, 64, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static int write_state(const store_t *s, const char *boot, bool clean)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s", s->dir, STATE_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char line[128];
    int n = snprintf(line, sizeof line, "%s %s\n", boot, clean ? "clean" : "dirty");
    int e = fs_write_file(tmp, line, (size_t)n);
    if (!e && rename(tmp, path) != 0) e = errno;
    return e;
}

int store_boot_check_(store_t *s, char *err, size_t errlen)
{
    char now[64], path[PATH_MAX], was[64] = "", how[16] = "";
    boot_id(now);
    snprintf(path, sizeof path, "%s/%s", s->dir, STATE_FILE);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%63s %15s", was, how) != 2) was[0] = how[0] = '\0';
        fclose(f);
    }
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/data.mdb", s->dir);
    bool damaged = f && strcmp(how, "clean") != 0 && (!now[0] || strcmp(was, now) != 0);
    if (damaged && access(data, F_OK) == 0) {
        LOG_W("store: the machine restarted since %s was last synced: its copy of the log is "
              "dropped and rebuilt from the Raft log",
              s->dir);
        if (unlink(data) != 0) {
            snprintf(err, errlen, "cannot remove %s: %s", data, strerror(errno));
            return STZ_EIO;
        }
    }
    int e = write_state(s, now, false);
    if (e) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        return STZ_EIO;
    }
    return STZ_OK;
}

void store_boot_clean_(store_t *s)
{
    int rc = mdb_env_sync(s->env, 1);
    if (rc) {
        LOG_E("store: sync of %s at close: %s", s->dir, mdb_strerror(rc));
        return;
    }
    char now[64];
    boot_id(now);
    int e = write_state(s, now, true);
    if (e) LOG_E("store: cannot write %s/%s: %s", s->dir, STATE_FILE, strerror(e));
}
