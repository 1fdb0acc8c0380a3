/* zap: the ZAP handler thread; see zap.h.
 *
 * Owns its REP socket (used only by its thread after start), its PGconn and
 * the counters (atomics, read by the receiver's thread). */
#include "zap.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bm_keyfile.h"
#include "bm_log.h"
#include "db.h"

#define S_ENDPOINT "inproc://zeromq.zap.01"
#define S_FRAMES_MAX 8
#define S_FRAME_MAX 256
#define S_POLL_MS 200
#define S_METADATA_MAX 256

struct bm_zap {
    void *sock;
    char *conninfo;
    PGconn *conn;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_uint_fast64_t accepted, refused;
};

typedef struct {
    char f[S_FRAMES_MAX][S_FRAME_MAX];
    size_t len[S_FRAMES_MAX];
    int n;
} s_request_t;

/* Appends one ZMTP metadata property (name-len, name, 4-byte value-len,
 * value).  Returns the new length, or 0 when it does not fit. */
static size_t s_property(uint8_t *buf, size_t at, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (at + 1 + nl + 4 + vl > S_METADATA_MAX)
        return 0;
    buf[at++] = (uint8_t)nl;
    memcpy(buf + at, name, nl);
    at += nl;
    buf[at++] = (uint8_t)(vl >> 24);
    buf[at++] = (uint8_t)(vl >> 16);
    buf[at++] = (uint8_t)(vl >> 8);
    buf[at++] = (uint8_t)vl;
    memcpy(buf + at, value, vl);
    return at + vl;
}

static void s_reply(bm_zap_t *z, const s_request_t *req, const char *status, const char *text,
                    const char *user, const uint8_t *meta, size_t meta_len)
{
    zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(z->sock, req->f[1], req->len[1], ZMQ_SNDMORE);
    zmq_send(z->sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(z->sock, meta, meta_len, 0);
}

/* A key lookup found the database unusable: what happened in an operator's
 * words and what follows (the connecting agent is refused for now and
 * retries), the libpq text at debug level. */
static void s_db_warn(const char *why)
{
    char cause[BM_ERR_MSG_MAX];
    bm_db_cause(why, cause, sizeof cause);
    bm_warn("zap", "could not check an agent's key: %s; the agent is refused for now and "
            "retries", cause);
    bm_debug("zap", "database error: %s", why);
}

/* Looks key up.  Returns 1 (enrolled, live: agent and branch filled), 0
 * (unknown or revoked) or -1 (database unavailable). */
static int s_lookup(bm_zap_t *z, const char *key, char *agent, size_t agent_size,
                    char *branch, size_t branch_size)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!z->conn || PQstatus(z->conn) != CONNECTION_OK) {
            bm_db_close(&z->conn);
            bm_err_t err;
            z->conn = bm_db_connect(z->conninfo, "branchmark-collector-zap", &err);
            if (!z->conn) {
                s_db_warn(err.msg);
                return -1;
            }
        }
        const char *p[] = {key};
        PGresult *res = PQexecParams(z->conn,
                                     "SELECT agent_id, branch_id::text FROM agent_keys "
                                     "WHERE public_key_z85 = $1 AND revoked_at IS NULL",
                                     1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            int found = PQntuples(res) == 1;
            if (found) {
                snprintf(agent, agent_size, "%s", PQgetvalue(res, 0, 0));
                snprintf(branch, branch_size, "%s", PQgetvalue(res, 0, 1));
            }
            PQclear(res);
            return found;
        }
        bm_err_t err;
        bm_db_result_err(res, z->conn, "agent_keys", &err);
        PQclear(res);
        if (PQstatus(z->conn) == CONNECTION_OK) {
            bm_warn("zap", "could not look up an agent key: %s", err.msg);
            return -1;   /* a query error, not a lost connection: do not loop */
        }
        s_db_warn(err.msg);
    }
    return -1;
}

static void s_handle(bm_zap_t *z, const s_request_t *req)
{
    /* version, request id, domain, address, identity, mechanism, key */
    if (req->n < 6 || req->len[0] != 3 || memcmp(req->f[0], "1.0", 3) != 0) {
        atomic_fetch_add(&z->refused, 1);
        /* A REP socket must answer before it can read again. */
        s_reply(z, req, "500", "malformed ZAP request", "", NULL, 0);
        return;
    }
    char address[S_FRAME_MAX + 1];
    memcpy(address, req->f[3], req->len[3]);
    address[req->len[3]] = '\0';
    bool curve = req->len[5] == 5 && memcmp(req->f[5], "CURVE", 5) == 0;
    bool domain = req->len[2] == strlen(BM_ZAP_DOMAIN) &&
                  memcmp(req->f[2], BM_ZAP_DOMAIN, req->len[2]) == 0;
    if (!curve || !domain || req->n != 7 || req->len[6] != 32) {
        atomic_fetch_add(&z->refused, 1);
        bm_warn("zap", "security: refused a non-CURVE or malformed handshake from %s", address);
        s_reply(z, req, "400", "CURVE with an enrolled key is required", "", NULL, 0);
        return;
    }
    char key[BM_Z85_KEY_LEN + 1];
    zmq_z85_encode(key, (const uint8_t *)req->f[6], 32);
    char agent[80] = "", branch[16] = "";
    int rc = s_lookup(z, key, agent, sizeof agent, branch, sizeof branch);
    if (rc <= 0) {
        atomic_fetch_add(&z->refused, 1);
        if (rc == 0)
            bm_warn("zap", "security: refused key %s from %s: not enrolled or revoked", key,
                    address);
        s_reply(z, req, rc == 0 ? "400" : "300",
                rc == 0 ? "key not enrolled or revoked" : "database unavailable", "", NULL, 0);
        return;
    }
    uint8_t meta[S_METADATA_MAX];
    size_t len = s_property(meta, 0, "X-Branch-Id", branch);
    len = len ? s_property(meta, len, "X-Key", key) : 0;
    atomic_fetch_add(&z->accepted, 1);
    bm_debug("zap", "accepted agent %s (key %s) from %s", agent, key, address);
    s_reply(z, req, "200", "OK", agent, meta, len);
}

static void *s_run(void *arg)
{
    bm_zap_t *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t item = {z->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_POLL_MS);
        if (rc <= 0)
            continue;
        s_request_t req;
        memset(req.len, 0, sizeof req.len);
        req.n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (req.n < S_FRAMES_MAX) {
                size_t n = zmq_msg_size(&m);
                if (n > S_FRAME_MAX)
                    n = S_FRAME_MAX;
                memcpy(req.f[req.n], zmq_msg_data(&m), n);
                req.len[req.n++] = n;
            }
            zmq_msg_close(&m);
        }
        s_handle(z, &req);
    }
    return NULL;
}

bm_zap_t *bm_zap_start(void *ctx, const char *conninfo, bm_err_t *err)
{
    bm_zap_t *z = calloc(1, sizeof *z);
    if (!z || !(z->conninfo = strdup(conninfo ? conninfo : ""))) {
        free(z);
        bm_err_set(err, "out of memory");
        return NULL;
    }
    int zero = 0;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
        zmq_bind(z->sock, S_ENDPOINT) < 0) {
        bm_err_set(err, "could not bind the ZAP handler to %s: %s", S_ENDPOINT,
                   zmq_strerror(errno));
        bm_zap_stop(&z);
        return NULL;
    }
    if (pthread_create(&z->thread, NULL, s_run, z) != 0) {
        bm_err_set(err, "could not start the ZAP handler thread");
        bm_zap_stop(&z);
        return NULL;
    }
    z->started = true;
    return z;
}

void bm_zap_stop(bm_zap_t **zap_p)
{
    if (!zap_p || !*zap_p)
        return;
    bm_zap_t *z = *zap_p;
    if (z->started) {
        atomic_store(&z->stop, true);
        pthread_join(z->thread, NULL);
    }
    if (z->sock)
        zmq_close(z->sock);
    bm_db_close(&z->conn);
    free(z->conninfo);
    free(z);
    *zap_p = NULL;
}

void bm_zap_counts(bm_zap_t *z, uint64_t *accepted, uint64_t *refused)
{
    *accepted = z ? atomic_load(&z->accepted) : 0;
    *refused = z ? atomic_load(&z->refused) : 0;
}
