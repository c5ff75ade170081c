/* fuzz_stan: every STAN request handler, driven through a real engine (server_t + stan_t on a
 * libuv loop, LMDB store in a temporary directory): connect, publish, subscribe, unsubscribe,
 * close-subscription, close, ping, ack, heartbeat replies, timers, and restarts (recovery from
 * what the engine itself stored).
 *
 * Input: byte 0 picks the settings (bit 0 replace_durable, bit 1 no message limits, bit 2
 * max_age 30 ms, bit 3 max_inactivity 30 ms, bit 4 MEMORY store). Then records:
 *   op (1 byte), length (2 bytes, little-endian), payload
 * op & 15: 0..6 a request (fz_kind_t: connect, pub, sub, unsub, subclose, close, ping) with the
 * payload as its protobuf, sent without a reply inbox when op & 0x80; 7 an Ack to the ack inbox
 * number op >> 4 of those the engine handed out; 8 the payload as the answer to the last
 * heartbeat; 9 wait payload[0] % 64 ms (timers: heartbeats, expiry, redelivery; at most two
 * waits per input, to keep it fast); 10 restart the engine on the same store (at most two);
 * 11 write a raw record into the store (see damage), to be met on delivery or recovery; 12 make
 * the next 1..3 commits fail as on a full disk (payload[0] % 3 + 1). Checked after each input
 * and around each restart: what the PubAcks promised (fz_engine_check). Every
 * reply to a request must unpack as its response type; the engine must shut down cleanly, leaving
 * no handle and no leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "stan_ctx.h"

static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_process();
    dir = fz_store_dir("stan");
    return 0;
}

/* Writes a record of the fuzzer's own straight into the store, as a damaged or foreign store
 * would hold it: payload = db (1 byte), key length (1 byte), key, value. It goes to disk with the
 * engine's next commit; the engine meets it when it reads that key (messages, on delivery) or at
 * the next restart (recovery). */
static void damage(fz_engine_t *e, const uint8_t *p, size_t len)
{
    store_db_t db = (store_db_t)(p[0] % STORE_NDBS);
    size_t klen = p[1];
    if (klen == 0 || klen > len - 2) return;
    store_put(e->st->store, db, p + 2, klen, p + 2 + klen, len - 2 - klen);
    fz_engine_settle(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t flags = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    bool memory = flags & 16;
    fz_engine_t e;
    memset(&e, 0, sizeof e);
    engine_host_rmtree(dir);
    fz_engine_config(&e, memory ? NULL : dir);
    e.check_replies = true;
    e.cfg.replace_durable = flags & 1;
    if (flags & 2) {
        e.cfg.limits.max_msgs = 0;
        e.cfg.limits.max_bytes = 0;
    }
    if (flags & 4) e.cfg.limits.max_age_ms = 30;
    if (flags & 8) e.cfg.limits.max_inactivity_ms = 30;
    char err[512];
    if (fz_engine_start(&e, false, err, sizeof err) != 0) abort(); /* a new store */
    int waits = 0, restarts = 0;
    /* The PubAck promise is checked unless the input wrote records of its own into the store,
     * or channels may be deleted (max_inactivity). Message counts only without limits. */
    bool check = !(flags & 8), exact = (flags & 2) && !(flags & 4);
    while (end - p >= 3) {
        uint8_t op = p[0];
        size_t len = (size_t)p[1] | (size_t)p[2] << 8;
        p += 3;
        if (len > (size_t)(end - p)) len = (size_t)(end - p);
        const uint8_t *pl = p;
        p += len;
        int kind = op & 15;
        if (kind < FZ_NKINDS) {
            fz_engine_request(&e, (fz_kind_t)kind, pl, len, op & 0x80);
        } else if (kind == 7) {
            char subj[256];
            if (e.nack)
                snprintf(subj, sizeof subj, "%s", e.ack_inboxes[(op >> 4) % e.nack]);
            else
                snprintf(subj, sizeof subj, "%sx", e.st->ack_prefix);
            fz_engine_publish(&e, subj, NULL, pl, len);
        } else if (kind == 8) {
            if (e.hb_reply) {
                char *to = strdup(e.hb_reply);
                fz_engine_publish(&e, to, NULL, pl, len);
                free(to);
            }
        } else if (kind == 9) {
            if (waits++ < 2) fz_engine_wait(&e, len ? pl[0] % 64 : 10);
        } else if (kind == 10) {
            if (!memory && restarts++ < 2) {
                if (check) fz_engine_check(&e, exact);
                fz_engine_stop(&e, false);
                /* After damage (op 11) the engine may refuse the store, with a message. */
                if (fz_engine_start(&e, false, err, sizeof err) != 0) break;
                if (check) fz_engine_check(&e, exact);
            }
        } else if (kind == 11 && len >= 2) {
            damage(&e, pl, len);
            check = false;
        } else if (kind == 12) {
            /* A full disk: the next commits fail, and memory must follow what the disk holds. */
            store_inject_enospc(e.st->store, len ? 1 + pl[0] % 3 : 1);
        }
    }
    if (check && e.running) fz_engine_check(&e, exact);
    fz_engine_stop(&e, true);
    if (!memory) engine_host_rmtree(dir);
    return 0;
}
