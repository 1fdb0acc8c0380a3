/* notify_send: delivers the outbox (notify.h).
 *
 * Order of one attempt, and why:
 *   1. claim a due delivery (FOR UPDATE SKIP LOCKED: two senders never take
 *      the same one), count the attempt, set its next attempt to now +
 *      backoff and insert its row in the delivery log; COMMIT.  From here on
 *      the attempt exists even if the process dies: it is retried at
 *      next_attempt_at with the same idempotency key;
 *   2. POST the stored body with its signature;
 *   3. record the answer: 2xx = delivered (never sent again), else pending
 *      (or failed after max_attempts).
 * A kill between 2 and 3 makes the receiver see the request again: that is
 * what the Idempotency-Key is for.
 * Plain http:// only (no TLS library linked); https endpoints are refused
 * with a clear error in the log until it is (docs/actions.md). */
#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bm_log.h"
#include "db.h"
#include "notify.h"

#define S_URL_MAX 1024
#define S_ANSWER_MAX 4096

int bm_notify_sign(const char *secret, const char *body, size_t len, char *hex)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
              &n) || n != 32)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

/* http://host[:port]/path into its parts.  0, or -1 with err. */
static int s_parse_url(const char *url, char *host, size_t hsize, char *port, char *path,
                       size_t psize, bm_err_t *err)
{
    if (strncmp(url, "http://", 7) != 0)
        return bm_err_set(err, "cannot deliver to \"%.80s\": only http:// URLs are supported", url);
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hl);
    size_t nl = colon ? (size_t)(colon - h) : hl;
    if (nl == 0 || nl >= hsize)
        return bm_err_set(err, "cannot deliver to \"%.80s\": bad host", url);
    memcpy(host, h, nl);
    host[nl] = '\0';
    snprintf(port, 8, "%.*s", colon ? (int)(hl - nl - 1) : 2, colon ? colon + 1 : "80");
    snprintf(path, psize, "%s", slash ? slash : "/");
    return 0;
}

/* Connects to host:port with the timeout on connect, send and receive. */
static int s_connect(const char *host, const char *port, int64_t timeout_ms, bm_err_t *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return bm_err_set(err, "could not resolve \"%s\": %s", host, gai_strerror(gai));
    int fd = -1;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   /* bounds connect too */
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            bm_err_set(err, "could not connect to %s:%s: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static int s_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* POSTs body to url.  Returns the HTTP status, or -1 with err. */
static int s_post(const char *url, const char *secret, const char *key, int attempt,
                  const char *body, int64_t timeout_ms, bm_err_t *err)
{
    char host[256], port[8], path[S_URL_MAX], sig[65], head[2048];
    if (s_parse_url(url, host, sizeof host, port, path, sizeof path, err) < 0)
        return -1;
    size_t len = strlen(body);
    if (bm_notify_sign(secret, body, len, sig) < 0)
        return bm_err_set(err, "could not compute the HMAC");
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: branchmark-notify\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Idempotency-Key: %s\r\nX-Branchmark-Signature: sha256=%s\r\n"
                      "X-Branchmark-Attempt: %d\r\nConnection: close\r\n\r\n",
                      path, host, port, len, key, sig, attempt);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return bm_err_set(err, "request head too long");
    int fd = s_connect(host, port, timeout_ms, err);
    if (fd < 0)
        return -1;
    char ans[S_ANSWER_MAX];
    size_t got = 0;
    int status = -1;
    if (s_send_all(fd, head, (size_t)hn) < 0 || s_send_all(fd, body, len) < 0) {
        bm_err_set(err, "could not send to %s:%s: %s", host, port, strerror(errno));
    } else {
        /* Only the status line matters; read until it is whole. */
        while (got < sizeof ans - 1 && !memchr(ans, '\n', got)) {
            ssize_t r = recv(fd, ans + got, sizeof ans - 1 - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        ans[got] = '\0';
        int code;
        if (sscanf(ans, "HTTP/1.%*c %3d", &code) == 1 && code >= 100 && code <= 599)
            status = code;
        else
            bm_err_set(err, "no HTTP answer from %s:%s%s", host, port,
                       got ? " (not HTTP)" : (errno ? ": timed out or reset" : ""));
    }
    close(fd);
    return status;
}

/* A due delivery, claimed and recorded (step 1 above). */
typedef struct {
    char delivery[24], attempt_id[24], key[96];
    int attempt;
    char *body, *url, *secret;      /* malloc'd */
} s_claim_t;

static void s_claim_free(s_claim_t *c)
{
    free(c->body);
    free(c->url);
    free(c->secret);
}

static int s_exec(PGconn *conn, const char *sql, int n, const char *const *p, PGresult **out,
                  const char *what, bm_err_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return -1;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* Claims and records one due delivery.  1 claimed, 0 none due, -1 err. */
static int s_claim(PGconn *conn, const bm_notify_config_t *cfg, s_claim_t *c, bm_err_t *err)
{
    PGresult *r = NULL;
    memset(c, 0, sizeof *c);
    if (s_exec(conn, "BEGIN", 0, NULL, NULL, "starting a claim", err) < 0)
        return -1;
    int rc = s_exec(conn,
                    "SELECT d.id, d.idempotency_key, d.attempts + 1, n.body, e.url, e.secret"
                    " FROM webhook_deliveries d JOIN notifications n ON n.id = d.notification_id"
                    " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                    " WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND e.active"
                    " ORDER BY d.next_attempt_at, d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
                    0, NULL, &r, "claiming a delivery", err);
    if (rc == 0 && PQntuples(r) == 1) {
        snprintf(c->delivery, sizeof c->delivery, "%s", PQgetvalue(r, 0, 0));
        snprintf(c->key, sizeof c->key, "%s", PQgetvalue(r, 0, 1));
        c->attempt = atoi(PQgetvalue(r, 0, 2));
        c->body = strdup(PQgetvalue(r, 0, 3));
        c->url = strdup(PQgetvalue(r, 0, 4));
        c->secret = strdup(PQgetvalue(r, 0, 5));
        rc = c->body && c->url && c->secret ? 1 : bm_err_set(err, "out of memory");
    }
    PQclear(r);
    if (rc == 1) {
        /* Backoff: retry_initial * 2^(attempt - 1), at most retry_max. */
        double wait = (double)cfg->retry_initial_ms;
        for (int i = 1; i < c->attempt && wait < (double)cfg->retry_max_ms; i++)
            wait *= 2;
        if (wait > (double)cfg->retry_max_ms)
            wait = (double)cfg->retry_max_ms;
        char w[32], att[16];
        snprintf(w, sizeof w, "%.0f", wait);
        snprintf(att, sizeof att, "%d", c->attempt);
        const char *p[3] = {c->delivery, w, att};
        r = NULL;
        rc = s_exec(conn, "WITH d AS (UPDATE webhook_deliveries SET attempts = $3::int,"
                          "  next_attempt_at = now() + make_interval(secs => $2::float8 / 1000)"
                          "  WHERE id = $1::bigint)"
                          " INSERT INTO webhook_attempts (delivery_id, attempt)"
                          " VALUES ($1::bigint, $3::int) RETURNING id",
                    3, p, &r, "recording an attempt", err) == 0 ? 1 : -1;
        if (rc == 1)
            snprintf(c->attempt_id, sizeof c->attempt_id, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (s_exec(conn, rc == 1 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, "committing a claim",
               rc == 1 ? err : &(bm_err_t){0}) < 0)
        rc = -1;
    if (rc != 1)
        s_claim_free(c);
    return rc;
}

/* Step 3: the answer into the log and the delivery. */
static int s_finish(PGconn *conn, const bm_notify_config_t *cfg, const s_claim_t *c, int status,
                    const char *error, bm_err_t *err)
{
    char st[16], max[16];
    snprintf(st, sizeof st, "%d", status);
    snprintf(max, sizeof max, "%lld", (long long)cfg->max_attempts);
    const char *p[5] = {c->attempt_id, status > 0 ? st : NULL, error, c->delivery, max};
    return s_exec(conn,
                  "WITH a AS (UPDATE webhook_attempts SET finished_at = clock_timestamp(),"
                  "  http_status = $2::int, error = left($3, 1000) WHERE id = $1::bigint)"
                  " UPDATE webhook_deliveries SET last_status = $2::int, last_error = left($3, 1000),"
                  "  state = CASE WHEN $2::int BETWEEN 200 AND 299 THEN 'delivered'"
                  "               WHEN attempts >= $5::int THEN 'failed' ELSE 'pending' END,"
                  "  delivered_at = CASE WHEN $2::int BETWEEN 200 AND 299 THEN now() END"
                  " WHERE id = $4::bigint",
                  5, p, NULL, "recording an answer", err);
}

/* Test-only fault injection (tests/integration/test_webhooks.sh): the
 * process kills itself with SIGKILL after its Nth recorded attempt, before
 * sending (BM_NOTIFY_CRASH_AFTER_RECORD=N) or after sending and before
 * recording the answer (BM_NOTIFY_CRASH_AFTER_SEND=N). */
static void s_crash_point(const char *name, int count)
{
    const char *v = getenv(name);
    if (v && atoi(v) == count) {
        bm_warn("deliver", "%s=%s: killing this process (test fault injection)", name, v);
        raise(SIGKILL);
    }
}

int bm_notify_deliver(PGconn *conn, const bm_notify_config_t *cfg, volatile int *stop,
                      bm_err_t *err)
{
    static int recorded;
    int n = 0;
    while (!*stop) {
        s_claim_t c;
        int rc = s_claim(conn, cfg, &c, err);
        if (rc <= 0)
            return rc < 0 ? -1 : n;
        n++;
        s_crash_point("BM_NOTIFY_CRASH_AFTER_RECORD", ++recorded);
        bm_err_t perr;
        bm_err_clear(&perr);
        int status = s_post(c.url, c.secret, c.key, c.attempt, c.body, cfg->request_timeout_ms,
                            &perr);
        s_crash_point("BM_NOTIFY_CRASH_AFTER_SEND", recorded);
        int ok = status >= 200 && status <= 299;
        char fields[256];
        snprintf(fields, sizeof fields, "delivery=%s key=%s attempt=%d status=%d", c.delivery,
                 c.key, c.attempt, status);
        bm_log_write(ok ? BM_LOG_INFO : BM_LOG_WARN, "deliver", fields, "%s",
                     ok ? "delivered" : status > 0 ? "refused by the receiver" : perr.msg);
        rc = s_finish(conn, cfg, &c, status, status > 0 ? (ok ? "" : "HTTP error") : perr.msg,
                      err);
        s_claim_free(&c);
        if (rc < 0)
            return -1;
    }
    return n;
}
