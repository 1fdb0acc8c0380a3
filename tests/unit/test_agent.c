/* test_agent: unit tests of the agent core (agent/agent_config.c, inbox.c,
 * sender.c, deadletter.c, agent_status.c) against a real spool and parsers
 * and an in-process fake collector (a ZeroMQ ROUTER served by the test's
 * own loop, so no threads and no sleeps: every wait polls a condition with
 * a deadline).  Each test uses its own directory under a temporary root. */

#include "bm_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agent_config.h"
#include "agent_status.h"
#include "bm_log.h"
#include "bm_time.h"
#include "bm_wire.h"
#include "deadletter.h"
#include "inbox.h"
#include "sender.h"
#include "spool.h"

static char s_root[256];
static volatile sig_atomic_t s_stop;

static void s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

static bool s_exists(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Number of entries in dir (without . and ..), and the first name that
 * contains `part` copied to found. */
static int s_count(const char *dir, const char *part, char *found, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    if (found)
        found[0] = '\0';
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        n++;
        if (found && part && !found[0] && strstr(de->d_name, part))
            snprintf(found, size, "%s", de->d_name);
    }
    closedir(d);
    return n;
}

static char *s_slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* A config for a test directory, loaded through the real loader. */
static int s_config(const char *dir, const char *extra, bm_agent_config_t *cfg)
{
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/agent.conf", dir);
    snprintf(text, sizeof text,
             "agent_id = test-agent\nbranch = B001\n"
             "collector = ipc://%s/coll.ipc\ndata_dir = %s/data\n"
             "%sack_timeout = 400ms\n"
             "heartbeat_interval = 150ms\nbackoff_min = 10ms\nbackoff_max = 40ms\n"
             "segment_bytes = 64K\nspool_max_bytes = 1M\n%s",
             dir, dir, extra && strstr(extra, "inbox_settle") ? "" : "inbox_settle = 0\n",
             extra ? extra : "batch_records = 2\n");
    s_write(path, text);
    memset(cfg, 0, sizeof *cfg);
    bm_err_t err = {{0}};
    int rc = bm_agent_config_load(path, cfg, &err);
    if (rc < 0)
        fprintf(stderr, "config: %s\n", err.msg);
    return rc;
}

/* ---- config ---- */

static int s_load_text(const char *text, bm_err_t *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/c.conf", s_root);
    s_write(path, text);
    bm_agent_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = bm_agent_config_load(path, &cfg, err);
    bm_agent_config_free(&cfg);
    return rc;
}

static void test_config(void)
{
    bm_agent_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    bm_err_t err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/good.conf", s_root);
    s_write(path, "# comment\nagent_id = a1\nbranch = B001\ncollector = tcp://h1:5555\n"
                  "collector = tcp://h2:5555\ndata_dir = /var/lib/bm/\nclock_max_age = 9600h\n");
    CHECK_OR_GOTO(bm_agent_config_load(path, &cfg, &err) == 0, out);
    CHECK_OR_GOTO(cfg.collector.count == 2, out);
    CHECK_OR_GOTO(strcmp(cfg.collector.items[1], "tcp://h2:5555") == 0, out);
    CHECK_OR_GOTO(strcmp(cfg.data_dir, "/var/lib/bm") == 0, out);
    CHECK_OR_GOTO(strcmp(cfg.inbox_dir, "/var/lib/bm/inbox") == 0, out);
    CHECK_OR_GOTO(cfg.batch_records == 500 && cfg.send_window == 16, out);
    CHECK_OR_GOTO(cfg.ack_timeout_ms == 30000 && cfg.backoff_min_ms == 500, out);
    CHECK_OR_GOTO(cfg.spool_max_bytes == 1024LL * 1024 * 1024, out);
    CHECK_OR_GOTO(cfg.clock_max_age_ms == 400LL * 24 * 3600 * 1000, out);
    CHECK_OR_GOTO(cfg.log_level_value == BM_LOG_INFO, out);

    static const char base[] = "agent_id = a1\nbranch = B001\ncollector = tcp://h:1\n"
                               "data_dir = /d\n";
    char text[1024];
    snprintf(text, sizeof text, "%scolour = blue\n", base);
    CHECK_OR_GOTO(s_load_text(text, &err) < 0 && strstr(err.msg, "unknown key \"colour\""), out);
    CHECK_OR_GOTO(s_load_text("agent_id = a1\nbranch = B001\ndata_dir = /d\n", &err) < 0 &&
          strstr(err.msg, "collector"), out);
    CHECK_OR_GOTO(s_load_text("agent_id = a b\nbranch = B001\ncollector = tcp://h:1\ndata_dir = /d\n",
                      &err) < 0 && strstr(err.msg, "agent_id"), out);
    CHECK_OR_GOTO(s_load_text("agent_id = a\nbranch = B001\ncollector = udp://h:1\ndata_dir = /d\n",
                      &err) < 0 && strstr(err.msg, "tcp:// or ipc://"), out);
    CHECK_OR_GOTO(s_load_text("agent_id = a\nbranch = B001\ncollector = tcp://h\ndata_dir = /d\n",
                      &err) < 0 && strstr(err.msg, "host:port"), out);
    snprintf(text, sizeof text, "%sbackoff_min = 2s\nbackoff_max = 1s\n", base);
    CHECK_OR_GOTO(s_load_text(text, &err) < 0 && strstr(err.msg, "backoff_min"), out);
    snprintf(text, sizeof text, "%ssend_window = 0\n", base);
    CHECK_OR_GOTO(s_load_text(text, &err) < 0 && strstr(err.msg, "send_window"), out);
    snprintf(text, sizeof text, "%sspool_max_bytes = 1M\nsegment_bytes = 1M\n", base);
    CHECK_OR_GOTO(s_load_text(text, &err) < 0 && strstr(err.msg, "twice segment_bytes"), out);
    snprintf(text, sizeof text, "%slog_level = loud\n", base);
    CHECK_OR_GOTO(s_load_text(text, &err) < 0 && strstr(err.msg, "log_level"), out);
out:
    bm_agent_config_free(&cfg);
}

/* ---- the fake collector ---- */

typedef struct {
    void *ctx, *router;
    int drop_first;         /* envelopes to swallow without a reply */
    int unavailable;        /* envelopes to answer with ERROR_UNAVAILABLE */
    uint64_t reject_seq;    /* refuse record 0 of this batch */
    uint64_t malformed_seq; /* answer ERROR_MALFORMED to every send of this batch */
    int malformed_sent;
    int received_seq1;      /* times batch 1 arrived */
    int heartbeats;
    uint64_t records_acked;
} s_fake_t;

static void s_fake_serve(s_fake_t *f)
{
    for (;;) {
        zmq_msg_t id, m;
        zmq_msg_init(&id);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&id, f->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&m);
            return;
        }
        zmq_msg_recv(&m, f->router, 0);
        bm_err_t err = {{0}};
        bm_envelope_t *env = bm_envelope_decode(zmq_msg_data(&m), zmq_msg_size(&m),
                                                BM_MAX_FRAME_DEFAULT, &err);
        Branchmark__V1__Reply rep = BRANCHMARK__V1__REPLY__INIT;
        Branchmark__V1__Ack ack = BRANCHMARK__V1__ACK__INIT;
        Branchmark__V1__Error e = BRANCHMARK__V1__ERROR__INIT;
        Branchmark__V1__RecordRejection rj = BRANCHMARK__V1__RECORD_REJECTION__INIT;
        Branchmark__V1__RecordRejection *rjs[1] = {&rj};
        bool reply = env != NULL;
        if (env) {
            rep.stream_id = env->stream_id;
            rep.sequence = env->sequence;
            rep.collector_time_ms = bm_now_ms();
            if (env->body_case == BRANCHMARK__V1__ENVELOPE__BODY_HEARTBEAT) {
                f->heartbeats++;
                rep.result_case = BRANCHMARK__V1__REPLY__RESULT_HEARTBEAT_OK;
                rep.heartbeat_ok = true;
            } else {
                if (env->sequence == 1)
                    f->received_seq1++;
                if (f->drop_first > 0) {
                    f->drop_first--;
                    reply = false;
                } else if (env->sequence == f->malformed_seq) {
                    f->malformed_sent++;
                    rep.result_case = BRANCHMARK__V1__REPLY__RESULT_ERROR;
                    rep.error = &e;
                    e.code = BRANCHMARK__V1__ERROR_CODE__ERROR_MALFORMED;
                    e.message = "batch: appears twice";
                } else if (f->unavailable > 0) {
                    f->unavailable--;
                    rep.result_case = BRANCHMARK__V1__REPLY__RESULT_ERROR;
                    rep.error = &e;
                    e.code = BRANCHMARK__V1__ERROR_CODE__ERROR_UNAVAILABLE;
                    e.message = "database down";
                } else {
                    rep.result_case = BRANCHMARK__V1__REPLY__RESULT_ACK;
                    rep.ack = &ack;
                    ack.stored = (uint32_t)env->batch->n_records;
                    if (env->sequence == f->reject_seq && env->batch->n_records > 0) {
                        ack.n_rejected = 1;
                        ack.rejected = rjs;
                        rj.index = 0;
                        rj.source_id = env->batch->records[0]->source_id;
                        rj.reason = "receipt: refused by the test";
                        ack.stored--;
                    }
                    f->records_acked += env->batch->n_records;
                }
            }
        }
        if (reply) {
            size_t len;
            uint8_t *buf = bm_message_encode(&rep.base, &len);
            zmq_send(f->router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(f->router, buf, len, 0);
            free(buf);
        }
        bm_envelope_free(&env);
        zmq_msg_close(&id);
        zmq_msg_close(&m);
    }
}

/* ---- the whole way of a file, with a lost reply, an error and a refusal ---- */

typedef struct {
    bm_agent_config_t cfg;
    bm_spool_t *spool;
    bm_deadletter_t *dl;
    bm_inbox_t *inbox;
    bm_sender_t *sender;
    char dir[300], data[400], inbox_dir[450], sending[450], done[450], rejected[450];
} s_agent_t;

static int s_agent_open(s_agent_t *a, const char *name, const char *extra)
{
    memset(a, 0, sizeof *a);
    snprintf(a->dir, sizeof a->dir, "%s/%s", s_root, name);
    mkdir(a->dir, 0700);
    if (s_config(a->dir, extra, &a->cfg) < 0)
        return -1;
    snprintf(a->data, sizeof a->data, "%s/data", a->dir);
    snprintf(a->inbox_dir, sizeof a->inbox_dir, "%s/inbox", a->data);
    snprintf(a->sending, sizeof a->sending, "%s/sending", a->data);
    snprintf(a->done, sizeof a->done, "%s/done", a->data);
    snprintf(a->rejected, sizeof a->rejected, "%s/rejected", a->data);
    mkdir(a->data, 0700);
    bm_err_t err = {{0}};
    char p[512];
    snprintf(p, sizeof p, "%s/spool", a->data);
    if (!(a->spool = bm_spool_open(p, (uint64_t)a->cfg.segment_bytes, &err)))
        goto fail;
    snprintf(p, sizeof p, "%s/deadletter", a->data);
    if (!(a->dl = bm_deadletter_open(p, &err)))
        goto fail;
    if (!(a->inbox = bm_inbox_new(&a->cfg, a->spool, &s_stop, &err)))
        goto fail;
    if (bm_inbox_recover(a->inbox, &err) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "agent open: %s\n", err.msg);
    return -1;
}

static void s_agent_close(s_agent_t *a)
{
    bm_sender_destroy(&a->sender);
    bm_inbox_destroy(&a->inbox);
    bm_deadletter_close(&a->dl);
    bm_spool_close(&a->spool);
    bm_agent_config_free(&a->cfg);
}

static void s_take_all(s_agent_t *a)
{
    bm_err_t err = {{0}};
    if (bm_inbox_scan(a->inbox, &err) < 0)
        fprintf(stderr, "scan: %s\n", err.msg);
    while (bm_inbox_take_next(a->inbox, &err) == 1)
        ;
}

static const char *s_now_iso(char *buf, size_t size)
{
    return bm_time_format(bm_now_ms() - 60000, buf, size);
}

static void s_on_refused(void *ctx, const char *origin, const char *source_id,
                         const char *reason)
{
    bm_inbox_note_refused(ctx, origin, source_id, reason);
}

/* Binds the fake collector where a's config sends. */
static int s_fake_bind(s_fake_t *f, const s_agent_t *a)
{
    char path[1024];
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    snprintf(path, sizeof path, "ipc://%s/coll.ipc", a->dir);
    return zmq_bind(f->router, path);
}

static void s_fake_close(s_fake_t *f)
{
    if (f->router)
        zmq_close(f->router);
    if (f->ctx)
        zmq_ctx_term(f->ctx);
}

/* Runs a's sender against f until the spool and sending/ are empty or
 * timeout_ms pass; true if they emptied. */
static bool s_run_until_drained(s_agent_t *a, s_fake_t *f, int64_t timeout_ms)
{
    bm_spool_stats_t st;
    int64_t deadline = bm_mono_ms() + timeout_ms;
    bool finished = false;
    while (!finished && bm_mono_ms() < deadline) {
        bm_sender_wait(a->sender, bm_sender_timeout_ms(a->sender, 20));
        bm_sender_process(a->sender);
        s_fake_serve(f);
        bm_inbox_finalize(a->inbox);
        bm_spool_stats(a->spool, &st);
        finished = st.entries == 0 && s_count(a->sending, NULL, NULL, 0) == 0;
    }
    return finished;
}

static void test_flow(void)
{
    s_agent_t a;
    s_fake_t f = {0};
    char ts[32], name[300], path[1024], text[2048];
    if (s_agent_open(&a, "flow", NULL) < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    snprintf(text, sizeof text,
             "source_id,at,amount,currency\nR-1,%s,1.00,EUR\nR-2,%s,2.00,EUR\n"
             "R-3,%s,3.00,EUR\nR-bad,yesterday,1.00,EUR\nR-4,%s,-4.50,EUR\nR-5,%s,5,EUR\n",
             ts, ts, ts, ts, ts);
    snprintf(path, sizeof path, "%s/receipts_a.csv", a.inbox_dir);
    s_write(path, text);
    snprintf(path, sizeof path, "%s/surveys_b.jsonl", a.inbox_dir);
    s_write(path, "{\"source_id\":\"S-1\",\"nps\":11}\n");
    snprintf(path, sizeof path, "%s/receipts_c.csv", a.inbox_dir);
    s_write(path, "source_id,at,amount,currency\n");
    snprintf(path, sizeof path, "%s/notes.txt", a.inbox_dir);
    s_write(path, "not an export\n");

    s_take_all(&a);
    /* receipts_a: 5 good records in 3 batches of 2, waiting for acks. */
    CHECK_OR_GOTO(s_count(a.sending, "receipts_a.csv", name, sizeof name) == 2, out);
    CHECK_OR_GOTO(strcmp(name, "00000000000000000001_receipts_a.csv") == 0 ||
          strcmp(name, "00000000000000000001_receipts_a.csv.errors") == 0, out);
    CHECK_OR_GOTO(s_exists(a.sending, "00000000000000000001_receipts_a.csv.errors"), out);
    snprintf(path, sizeof path, "%s/00000000000000000001_receipts_a.csv.errors", a.sending);
    CHECK_OR_GOTO(strstr(s_slurp(path), "line 5: ") != NULL, out);
    /* surveys_b: no good line, rejected at once; receipts_c: empty, done. */
    CHECK_OR_GOTO(s_count(a.rejected, "surveys_b.jsonl.errors", name, sizeof name) == 2 && name[0], out);
    CHECK_OR_GOTO(s_count(a.done, "receipts_c.csv", name, sizeof name) == 1 && name[0], out);
    CHECK_OR_GOTO(s_exists(a.inbox_dir, "notes.txt"), out);
    bm_spool_stats_t st;
    bm_spool_stats(a.spool, &st);
    CHECK_OR_GOTO(st.entries == 3 && st.next_seq == 4, out);

    /* The collector loses the first send, is unavailable once, refuses
     * record 0 of batch 2, then acks everything. */
    CHECK_OR_GOTO(s_fake_bind(&f, &a) == 0, out);
    f.drop_first = 1;
    f.unavailable = 1;
    f.reject_seq = 2;
    bm_err_t err = {{0}};
    CHECK_OR_GOTO((a.sender = bm_sender_new(&a.cfg, a.spool, a.dl, &err)) != NULL, out);
    bm_sender_on_refused(a.sender, s_on_refused, a.inbox);
    CHECK_OR_GOTO(s_run_until_drained(&a, &f, 15000), out);
    CHECK_OR_GOTO(f.received_seq1 >= 2, out);           /* resent after the lost reply */
    CHECK_OR_GOTO(s_exists(a.rejected, "00000000000000000001_receipts_a.csv"), out);
    CHECK_OR_GOTO(s_exists(a.rejected, "00000000000000000001_receipts_a.csv.errors"), out);
    bm_sender_info_t si;
    bm_sender_info(a.sender, &si);
    CHECK_OR_GOTO(si.records_sent == 5 && si.records_acked == 5, out);
    CHECK_OR_GOTO(si.records_rejected == 1 && si.records_deadlettered == 1, out);
    CHECK_OR_GOTO(si.last_error[0] && si.last_error_ms > 0, out);   /* the lost reply and the error */
    CHECK_OR_GOTO(si.clock_skew_known, out);
    /* The refused record is the first of batch 2: R-3, with its bytes. */
    char dldir[600];
    snprintf(dldir, sizeof dldir, "%s/deadletter", a.data);
    CHECK_OR_GOTO(s_count(dldir, "deadletter-", name, sizeof name) == 1 && name[0], out);
    snprintf(path, sizeof path, "%s/%s", dldir, name);
    const char *dl = s_slurp(path);
    CHECK_OR_GOTO(dl && strstr(dl, "\"source_id\":\"R-3\"") && strstr(dl, "\"sequence\":2") &&
          strstr(dl, "\"kind\":\"receipt\"") && strstr(dl, "\"record_b64\":\"") &&
          strstr(dl, "refused by the test"), out);
    /* ... and in the file's .errors, so the file is in rejected/ with it. */
    snprintf(path, sizeof path, "%s/00000000000000000001_receipts_a.csv.errors", a.rejected);
    const char *errs = s_slurp(path);
    CHECK_OR_GOTO(errs && strstr(errs, "line 5: ") &&
                  strstr(errs, "record \"R-3\": refused by the collector: receipt: refused by the test"),
                  out);

    /* Idle: heartbeats flow and are answered. */
    int64_t deadline = bm_mono_ms() + 5000;
    while (f.heartbeats < 2 && bm_mono_ms() < deadline) {
        bm_sender_wait(a.sender, bm_sender_timeout_ms(a.sender, 20));
        bm_sender_process(a.sender);
        s_fake_serve(&f);
    }
    CHECK_OR_GOTO(f.heartbeats >= 2, out);
    bm_sender_info(a.sender, &si);
    CHECK_OR_GOTO(strcmp(si.state, "connected") == 0, out);
out:
    s_agent_close(&a);
    s_fake_close(&f);
}

/* ---- a batch refused for its bytes is given up, visibly ---- */

static void test_give_up(void)
{
    s_agent_t a;
    s_fake_t f = {0};
    char ts[32], name[300], path[1024], text[1024];
    if (s_agent_open(&a, "giveup", NULL) < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    snprintf(text, sizeof text, "source_id,at,amount,currency\nG-1,%s,1.00,EUR\n"
             "G-2,%s,2.00,EUR\nG-3,%s,3.00,EUR\n", ts, ts, ts);
    snprintf(path, sizeof path, "%s/receipts_g.csv", a.inbox_dir);
    s_write(path, text);
    s_take_all(&a);
    CHECK_OR_GOTO(s_fake_bind(&f, &a) == 0, out);
    f.malformed_seq = 1;        /* G-1, G-2: refused for its bytes, always */
    bm_err_t err = {{0}};
    CHECK_OR_GOTO((a.sender = bm_sender_new(&a.cfg, a.spool, a.dl, &err)) != NULL, out);
    bm_sender_on_refused(a.sender, s_on_refused, a.inbox);
    /* Not held up for ever, not given up at the first answer, not lost. */
    CHECK_OR_GOTO(s_run_until_drained(&a, &f, 15000), out);
    CHECK(f.malformed_sent == 3);
    CHECK(f.records_acked == 1);                        /* G-3's batch went on */
    bm_sender_info_t si;
    bm_sender_info(a.sender, &si);
    CHECK(si.records_rejected == 2 && si.records_deadlettered == 2);
    CHECK(strstr(si.last_error, "given up") != NULL);
    CHECK_OR_GOTO(s_count(a.rejected, "receipts_g.csv.errors", name, sizeof name) == 2 && name[0],
                  out);
    snprintf(path, sizeof path, "%s/00000000000000000001_receipts_g.csv.errors", a.rejected);
    const char *errs = s_slurp(path);
    CHECK(errs && strstr(errs, "record \"G-1\": refused by the collector: the collector "
                               "refused the whole batch 3 times (ERROR_MALFORMED: batch: "
                               "appears twice)") &&
          strstr(errs, "record \"G-2\""));
out:
    s_agent_close(&a);
    s_fake_close(&f);
}

/* ---- restart recovery ---- */

static void test_recovery(void)
{
    s_agent_t a;
    char ts[32], path[700], path2[700], text[1024];
    if (s_agent_open(&a, "recovery", NULL) < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    snprintf(text, sizeof text,
             "source_id,at,amount,currency\nR-1,%s,1.00,EUR\nR-x,bad,1,EUR\nR-2,%s,2.00,EUR\n"
             "R-3,%s,3.00,EUR\n", ts, ts, ts);
    snprintf(path, sizeof path, "%s/receipts_r.csv", a.inbox_dir);
    s_write(path, text);
    s_take_all(&a);
    const char *u = "00000000000000000001_receipts_r.csv";
    CHECK_OR_GOTO(s_exists(a.sending, u), out);
    /* A crash lost the rename and the list of bad lines: back to the inbox. */
    snprintf(path, sizeof path, "%s/%s", a.sending, u);
    snprintf(path2, sizeof path2, "%s/receipts_r.csv", a.inbox_dir);
    CHECK_OR_GOTO(rename(path, path2) == 0, out);
    snprintf(path, sizeof path, "%s/%s.errors", a.sending, u);
    CHECK_OR_GOTO(unlink(path) == 0, out);
    /* A file left in sending/ whose batches are long acknowledged. */
    snprintf(path, sizeof path, "%s/00000000000000000000_calls_old.csv", a.sending);
    s_write(path, "source_id,ring_start,answered,wait_seconds\n");
    bm_inbox_destroy(&a.inbox);
    bm_spool_close(&a.spool);

    bm_err_t err = {{0}};
    snprintf(path, sizeof path, "%s/spool", a.data);
    CHECK_OR_GOTO((a.spool = bm_spool_open(path, (uint64_t)a.cfg.segment_bytes, &err)) != NULL, out);
    CHECK_OR_GOTO((a.inbox = bm_inbox_new(&a.cfg, a.spool, &s_stop, &err)) != NULL, out);
    CHECK_OR_GOTO(bm_inbox_recover(a.inbox, &err) == 0, out);
    CHECK_OR_GOTO(s_exists(a.sending, u), out);
    CHECK_OR_GOTO(s_exists(a.sending, "00000000000000000001_receipts_r.csv.errors"), out);
    CHECK_OR_GOTO(!s_exists(a.inbox_dir, "receipts_r.csv"), out);
    CHECK_OR_GOTO(s_exists(a.done, "00000000000000000000_calls_old.csv"), out);
    bm_spool_stats_t st;
    bm_spool_stats(a.spool, &st);
    CHECK_OR_GOTO(st.next_seq == 3, out);            /* not parsed again */
    bm_inbox_info_t ii;
    bm_inbox_info(a.inbox, &ii);
    CHECK_OR_GOTO(ii.files_pending == 1, out);
    /* Acknowledging both batches finishes the file. */
    CHECK_OR_GOTO(bm_spool_ack(a.spool, 2, &err) == 0 && bm_spool_ack(a.spool, 1, &err) == 0, out);
    bm_inbox_finalize(a.inbox);
    CHECK_OR_GOTO(s_exists(a.rejected, u), out);
    CHECK_OR_GOTO(s_exists(a.rejected, "00000000000000000001_receipts_r.csv.errors"), out);
    bm_inbox_info(a.inbox, &ii);
    CHECK_OR_GOTO(ii.files_pending == 0, out);
out:
    s_agent_close(&a);
}

/* ---- spool limit ---- */

static void test_spool_full(void)
{
    s_agent_t a;
    char ts[32], path[700];
    if (s_agent_open(&a, "full", "batch_records = 1\n") < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    /* About 1.2 MB of spool from one file; the limit is 1 MB. */
    snprintf(path, sizeof path, "%s/receipts_1.csv", a.inbox_dir);
    FILE *fp = fopen(path, "w");
    CHECK_OR_GOTO(fp, out);
    fprintf(fp, "source_id,at,amount,currency\n");
    for (int i = 0; i < 20000; i++)
        fprintf(fp, "R-%d,%s,%d.25,EUR\n", i, ts, i % 1000);
    fclose(fp);
    snprintf(path, sizeof path, "%s/receipts_2.csv", a.inbox_dir);
    s_write(path, "source_id,at,amount,currency\n");
    s_take_all(&a);
    bm_inbox_info_t ii;
    bm_inbox_info(a.inbox, &ii);
    CHECK_OR_GOTO(ii.spool_full, out);
    CHECK_OR_GOTO(s_exists(a.inbox_dir, "receipts_2.csv"), out);   /* waits, untouched */
    /* Acks that free segments but leave the spool between 90% and 100% of
     * its limit do not resume intake yet (no full / below-limit log pair
     * per freed segment); below 90% it resumes. */
    bm_spool_stats_t st;
    bm_spool_stats(a.spool, &st);
    bm_err_t err = {{0}};
    uint64_t max = (uint64_t)a.cfg.spool_max_bytes;
    bool between = false, below = false;
    for (uint64_t s = 1; s < st.next_seq; s++) {
        CHECK_OR_GOTO(bm_spool_ack(a.spool, s, &err) == 0, out);
        bm_spool_stats_t now;
        bm_spool_stats(a.spool, &now);
        if (now.entries == 0 || now.bytes >= max || below)
            continue;
        CHECK(bm_inbox_scan(a.inbox, &err) == 0);
        bm_inbox_info(a.inbox, &ii);
        if (now.bytes >= max / 100 * 90) {
            CHECK(ii.spool_full);
            between = true;
        } else {
            CHECK(!ii.spool_full);
            below = true;
        }
    }
    CHECK(between && below);
    /* Acknowledging everything lets intake go on. */
    bm_inbox_finalize(a.inbox);
    s_take_all(&a);
    CHECK_OR_GOTO(!s_exists(a.inbox_dir, "receipts_2.csv"), out);
    bm_inbox_info(a.inbox, &ii);
    CHECK_OR_GOTO(!ii.spool_full && ii.files_done == 2, out);
out:
    s_agent_close(&a);
}

/* ---- the intake rules ---- */

static void test_intake_rules(void)
{
    bm_file_state_t a = {.dev = 1, .ino = 2, .size = 100, .mtime_ns = 5, .ctime_ns = 6};
    bm_file_state_t b = a;
    CHECK(bm_inbox_young_ms(2000) == 2000 * BM_INBOX_YOUNG_FACTOR);
    CHECK(bm_inbox_young_ms(0) == 0);
    /* Settled: the same state observed for the settle time, and an old mtime. */
    CHECK(!bm_inbox_settled(NULL, 0, &b, 1000, 5000, 100));     /* first sight */
    CHECK(bm_inbox_settled(NULL, 0, &b, 1000, 5000, 0));        /* settle 0: at once */
    CHECK(!bm_inbox_settled(&a, 1000, &b, 1050, 5000, 100));    /* seen 50 ms */
    CHECK(bm_inbox_settled(&a, 1000, &b, 1100, 5000, 100));
    CHECK(!bm_inbox_settled(&a, 1000, &b, 1100, 50, 100));      /* mtime 50 ms old */
    CHECK(bm_inbox_settled(&a, 1000, &b, 1100, -120000, 100));  /* clock far behind */
    b.size = 101;                                               /* appended */
    CHECK(!bm_inbox_settled(&a, 1000, &b, 9999, 5000, 100));
    b = a;
    b.ino = 3;                                                  /* replaced */
    CHECK(!bm_inbox_settled(&a, 1000, &b, 9999, 5000, 100));
    b = a;
    b.ctime_ns = 7;                                             /* rewritten, mtime reset */
    CHECK(!bm_inbox_settled(&a, 1000, &b, 9999, 5000, 100));
    b = a;
    b.mtime_ns = 9;
    CHECK(!bm_file_state_same(&a, &b));

    /* Judged while young (< 10 x settle) or old. */
    CHECK(bm_inbox_judge(100, '\n', false, 500, 100) == BM_INTAKE_TAKE);
    CHECK(bm_inbox_judge(100, '7', false, 500, 100) == BM_INTAKE_WAIT);   /* cut line */
    CHECK(bm_inbox_judge(100, '7', false, 1000, 100) == BM_INTAKE_TAKE);  /* old: a last line */
    CHECK(bm_inbox_judge(100, '\n', true, 500, 100) == BM_INTAKE_WAIT);   /* writer still there */
    CHECK(bm_inbox_judge(100, '\n', true, 1000, 100) == BM_INTAKE_TAKE);
    CHECK(bm_inbox_judge(0, -1, false, 500, 100) == BM_INTAKE_WAIT);      /* empty, young */
    CHECK(bm_inbox_judge(0, -1, false, 1000, 100) == BM_INTAKE_EMPTY);
    CHECK(bm_inbox_judge(100, '7', false, -30000, 100) == BM_INTAKE_WAIT); /* mtime ahead */
    CHECK(bm_inbox_judge(100, '7', false, -90000, 100) == BM_INTAKE_TAKE); /* clock broken */
    CHECK(bm_inbox_judge(100, '7', true, 0, 0) == BM_INTAKE_TAKE);        /* settle 0 */
    CHECK(bm_inbox_judge(0, -1, false, 0, 0) == BM_INTAKE_EMPTY);
}

/* Sets path's modification time to now + offset_ms. */
static void s_set_mtime(const char *path, int64_t offset_ms)
{
    int64_t t = bm_now_ms() + offset_ms;
    struct timespec ts[2] = {{t / 1000, (t % 1000) * 1000000}, {t / 1000, (t % 1000) * 1000000}};
    if (utimensat(AT_FDCWD, path, ts, 0) < 0)
        perror(path);
}

/* Scans and takes until cond(a, arg) holds or ms pass; returns cond. */
static bool s_take_until(s_agent_t *a, bool (*cond)(s_agent_t *, const char *),
                         const char *arg, int64_t ms)
{
    int64_t deadline = bm_mono_ms() + ms;
    for (;;) {
        s_take_all(a);
        bm_inbox_finalize(a->inbox);
        if (cond(a, arg) || bm_mono_ms() >= deadline)
            return cond(a, arg);
        usleep(20000);
    }
}

static bool s_gone_from_inbox(s_agent_t *a, const char *name)
{
    return !s_exists(a->inbox_dir, name);
}

static bool s_back_in_inbox(s_agent_t *a, const char *name)
{
    return s_exists(a->inbox_dir, name);
}

static void s_ack_all(s_agent_t *a)
{
    bm_spool_stats_t st;
    bm_spool_stats(a->spool, &st);
    bm_err_t err = {{0}};
    for (uint64_t s = st.acked_seq + 1; s < st.next_seq; s++)
        bm_spool_ack(a->spool, s, &err);
}

/* A real inbox with inbox_settle = 200 ms (young: 2 s).  Waiting that long
 * is what is tested; every wait polls a condition with a deadline. */
static void test_intake_files(void)
{
    s_agent_t a;
    char ts[32], path[1100], text[1024], name[300];
    if (s_agent_open(&a, "intake", "inbox_settle = 200ms\nbatch_records = 100\n") < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    /* 1. A last line without a line end in a young file is not taken ... */
    snprintf(text, sizeof text,
             "source_id,interval_start,interval_seconds,passers_by,entrants\n"
             "PC-1,%s,900,130,17\nPC-2,%s,900,130,1", ts, ts);
    snprintf(path, sizeof path, "%s/people_count_cut.csv", a.inbox_dir);
    s_write(path, text);
    CHECK(!s_take_until(&a, s_gone_from_inbox, "people_count_cut.csv", 800));
    bm_inbox_info_t ii;
    bm_inbox_info(a.inbox, &ii);
    CHECK(ii.files_waiting == 1);
    /* ... once it is old, the line is an ordinary last line. */
    s_set_mtime(path, -3600 * 1000);
    CHECK_OR_GOTO(s_take_until(&a, s_gone_from_inbox, "people_count_cut.csv", 5000), out);
    CHECK_OR_GOTO(s_count(a.sending, "people_count_cut.csv", name, sizeof name) == 1, out);
    bm_spool_stats_t st;
    bm_spool_stats(a.spool, &st);
    CHECK(st.next_seq == 2);

    /* 2. An empty file: waits while young, then rejected as an empty export. */
    snprintf(path, sizeof path, "%s/receipts_empty.csv", a.inbox_dir);
    s_write(path, "");
    CHECK(!s_take_until(&a, s_gone_from_inbox, "receipts_empty.csv", 500));
    s_set_mtime(path, -3600 * 1000);
    CHECK_OR_GOTO(s_take_until(&a, s_gone_from_inbox, "receipts_empty.csv", 5000), out);
    CHECK_OR_GOTO(s_count(a.rejected, "receipts_empty.csv.errors", name, sizeof name) == 2, out);
    snprintf(path, sizeof path, "%s/%s", a.rejected, name);
    CHECK(strstr(s_slurp(path), "empty export") != NULL);

    /* 3. Taken while young, then written to in sending/ (the writer's open
     * file moved along): it goes back to the inbox and is read again. */
    s_ack_all(&a);
    bm_inbox_finalize(a.inbox);
    snprintf(text, sizeof text,
             "source_id,interval_start,interval_seconds,passers_by,entrants\n"
             "PW-1,%s,900,10,1\nPW-2,%s,900,20,2\n", ts, ts);
    snprintf(path, sizeof path, "%s/people_count_w.csv", a.inbox_dir);
    s_write(path, text);
    CHECK_OR_GOTO(s_take_until(&a, s_gone_from_inbox, "people_count_w.csv", 5000), out);
    CHECK_OR_GOTO(s_count(a.sending, "people_count_w.csv", name, sizeof name) == 1, out);
    s_ack_all(&a);
    bm_inbox_finalize(a.inbox);
    CHECK(s_exists(a.sending, name));          /* acked, but young: still watched */
    snprintf(path, sizeof path, "%s/%s", a.sending, name);
    FILE *fp = fopen(path, "a");
    CHECK_OR_GOTO(fp, out);
    fprintf(fp, "PW-3,%s,900,30,3\n", ts);
    fclose(fp);
    CHECK_OR_GOTO(s_take_until(&a, s_back_in_inbox, "people_count_w.csv", 5000), out);
    CHECK(!s_exists(a.sending, name));
    snprintf(path, sizeof path, "%s/people_count_w.csv", a.inbox_dir);
    s_set_mtime(path, -3600 * 1000);
    CHECK_OR_GOTO(s_take_until(&a, s_gone_from_inbox, "people_count_w.csv", 5000), out);
    bm_spool_stats(a.spool, &st);
    uint64_t before = st.next_seq;
    s_ack_all(&a);
    bm_inbox_finalize(a.inbox);                /* old now: finished */
    snprintf(name, sizeof name, "00000000000000000003_people_count_w.csv");
    CHECK(s_exists(a.done, name));
    snprintf(path, sizeof path, "%s/%s", a.done, name);
    CHECK(strstr(s_slurp(path), "PW-3,") != NULL);
    CHECK(before == 4);                        /* batches: cut, w, w again (3 records) */

    /* 4. Written to between the scan that found it settled and the take:
     * not taken then (nothing spooled), taken whole once settled again. */
    snprintf(text, sizeof text,
             "source_id,interval_start,interval_seconds,passers_by,entrants\n"
             "PX-1,%s,900,10,1\n", ts);
    snprintf(path, sizeof path, "%s/people_count_x.csv", a.inbox_dir);
    s_write(path, text);
    s_set_mtime(path, -3600 * 1000);
    int64_t deadline = bm_mono_ms() + 5000;
    bm_err_t err = {{0}};
    do {
        usleep(20000);
        CHECK_OR_GOTO(bm_inbox_scan(a.inbox, &err) == 0, out);
        bm_inbox_info(a.inbox, &ii);
    } while (ii.files_queued == 0 && bm_mono_ms() < deadline);
    CHECK_OR_GOTO(ii.files_queued == 1, out);
    fp = fopen(path, "a");
    CHECK_OR_GOTO(fp, out);
    fprintf(fp, "PX-2,%s,900,20,2\n", ts);
    fclose(fp);
    s_set_mtime(path, -3600 * 1000);
    bm_spool_stats(a.spool, &st);
    before = st.next_seq;
    CHECK(bm_inbox_take_next(a.inbox, &err) == 1);
    CHECK(s_exists(a.inbox_dir, "people_count_x.csv"));
    bm_spool_stats(a.spool, &st);
    CHECK(st.next_seq == before);
    CHECK_OR_GOTO(s_take_until(&a, s_gone_from_inbox, "people_count_x.csv", 5000), out);
    snprintf(name, sizeof name, "%020" PRIu64 "_people_count_x.csv", before);
    snprintf(path, sizeof path, "%s/%s", a.sending, name);
    CHECK(strstr(s_slurp(path), "PX-2,") != NULL);

    /* 5. Files that can never be taken are listed, with why. */
    snprintf(path, sizeof path, "%s/Receipts.CSV", a.inbox_dir);
    s_write(path, "source_id,at,amount,currency\n");
    snprintf(path, sizeof path, "%s/notes.txt", a.inbox_dir);
    s_write(path, "hello\n");
    snprintf(path, sizeof path, "%s/receipts_link.csv", a.inbox_dir);
    CHECK(symlink("/nonexistent/receipts.csv", path) == 0);
    snprintf(path, sizeof path, "%s/receipts_dir.csv", a.inbox_dir);
    CHECK(mkdir(path, 0700) == 0);
    s_take_all(&a);
    bm_inbox_info(a.inbox, &ii);
    CHECK(ii.files_stuck == 4);
    bool case_hint = false, link = false, dir = false, unknown = false;
    const char *n, *why;
    for (size_t i = 0; bm_inbox_stuck(a.inbox, i, &n, &why); i++) {
        case_hint |= !strcmp(n, "Receipts.CSV") && strstr(why, "\"receipts.csv\"");
        link |= !strcmp(n, "receipts_link.csv") && strstr(why, "does not exist");
        dir |= !strcmp(n, "receipts_dir.csv") && strstr(why, "folder");
        unknown |= !strcmp(n, "notes.txt") && strstr(why, "matches no export format");
    }
    CHECK(case_hint && link && dir && unknown);
    rmdir(path);
    snprintf(path, sizeof path, "%s/notes.txt", a.inbox_dir);
    unlink(path);
    s_take_all(&a);
    bm_inbox_info(a.inbox, &ii);
    CHECK(ii.files_stuck == 2);
out:
    s_agent_close(&a);
}

/* Acks saved lazily are lost in a crash; files already in done/ tell that
 * their batches were acknowledged. */
static void test_recovery_done(void)
{
    s_agent_t a;
    char ts[32], path[700], bak[760], text[512];
    if (s_agent_open(&a, "recdone", NULL) < 0) {
        bm_test_failures++;
        s_agent_close(&a);
        return;
    }
    s_now_iso(ts, sizeof ts);
    snprintf(text, sizeof text, "source_id,at,amount,currency\nD-1,%s,1.00,EUR\n"
             "D-2,%s,2.00,EUR\nD-3,%s,3.00,EUR\n", ts, ts, ts);
    snprintf(path, sizeof path, "%s/receipts_d.csv", a.inbox_dir);
    s_write(path, text);
    s_take_all(&a);
    bm_inbox_destroy(&a.inbox);
    bm_spool_close(&a.spool);
    /* The state as it was before the acks. */
    snprintf(path, sizeof path, "%s/spool/state", a.data);
    snprintf(bak, sizeof bak, "%s.bak", path);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, bak);
    CHECK_OR_GOTO(system(cmd) == 0, out);
    bm_err_t err = {{0}};
    snprintf(path, sizeof path, "%s/spool", a.data);
    CHECK_OR_GOTO((a.spool = bm_spool_open(path, (uint64_t)a.cfg.segment_bytes, &err)) != NULL, out);
    CHECK_OR_GOTO((a.inbox = bm_inbox_new(&a.cfg, a.spool, &s_stop, &err)) != NULL, out);
    CHECK_OR_GOTO(bm_inbox_recover(a.inbox, &err) == 0, out);
    s_ack_all(&a);
    bm_inbox_finalize(a.inbox);
    CHECK_OR_GOTO(s_exists(a.done, "00000000000000000001_receipts_d.csv"), out);
    bm_inbox_destroy(&a.inbox);
    bm_spool_close(&a.spool);
    snprintf(path, sizeof path, "%s/spool/state", a.data);
    CHECK_OR_GOTO(rename(bak, path) == 0, out);       /* the acks are lost */
    snprintf(path, sizeof path, "%s/spool", a.data);
    CHECK_OR_GOTO((a.spool = bm_spool_open(path, (uint64_t)a.cfg.segment_bytes, &err)) != NULL, out);
    bm_spool_stats_t st;
    bm_spool_stats(a.spool, &st);
    CHECK_OR_GOTO(st.entries == 2 && st.oldest_unacked_ms > 0, out);
    CHECK_OR_GOTO((a.inbox = bm_inbox_new(&a.cfg, a.spool, &s_stop, &err)) != NULL, out);
    CHECK_OR_GOTO(bm_inbox_recover(a.inbox, &err) == 0, out);
    bm_spool_stats(a.spool, &st);
    CHECK(st.entries == 0 && st.oldest_unacked_ms == 0);  /* not resent, not "unsent" */
    bm_inbox_info_t ii;
    bm_inbox_info(a.inbox, &ii);
    CHECK(ii.files_pending == 0);
out:
    s_agent_close(&a);
}

/* ---- status file ---- */

static void test_status(void)
{
    bm_agent_status_t st;
    memset(&st, 0, sizeof st);
    char dir[400], out_path[500];
    snprintf(dir, sizeof dir, "%s/status", s_root);
    mkdir(dir, 0700);
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    FILE *out = NULL;
    bm_err_t err = {{0}};
    /* No status file yet: not running. */
    out = fopen(out_path, "w+");
    CHECK_OR_GOTO(bm_agent_status_show(dir, false, out, out) == BM_STATUS_EXIT_NOT_RUNNING, out);
    fclose(out);
    out = NULL;

    st.pid = (int)getpid();
    st.running = false;
    st.started_ms = bm_now_ms();
    st.updated_ms = st.started_ms;
    snprintf(st.agent_id, sizeof st.agent_id, "a1");
    snprintf(st.branch, sizeof st.branch, "B001");
    snprintf(st.state, sizeof st.state, "refused");
    snprintf(st.last_error, sizeof st.last_error, "collector refuses this agent");
    st.last_error_ms = st.started_ms;
    st.spool_entries = 7;
    char *json = bm_agent_status_json(&st);
    CHECK_OR_GOTO(json && strstr(json, "\"spool_entries\": 7") && strstr(json, "\"state\": \"refused\""), out);
    CHECK_OR_GOTO(bm_agent_status_write(dir, json, &err) == 0, out);
    free(json);
    out = fopen(out_path, "w+");
    CHECK_OR_GOTO(bm_agent_status_show(dir, false, out, out) == BM_STATUS_EXIT_NOT_RUNNING, out);
    fflush(out);
    const char *text = s_slurp(out_path);
    CHECK_OR_GOTO(strstr(text, "not running (last status at ") && strstr(text, "7 batches"), out);
    fclose(out);
    out = fopen(out_path, "w+");
    CHECK_OR_GOTO(bm_agent_status_show(dir, true, out, out) == BM_STATUS_EXIT_NOT_RUNNING, out);
    fflush(out);
    CHECK_OR_GOTO(strstr(s_slurp(out_path), "\"alive\": false"), out);
    fclose(out);
    out = NULL;
    /* A damaged file is reported, not trusted. */
    char path[500];
    snprintf(path, sizeof path, "%s/status.json", dir);
    s_write(path, "{\"pid\": ");
    out = fopen(out_path, "w+");
    CHECK_OR_GOTO(bm_agent_status_show(dir, false, out, out) == BM_STATUS_EXIT_USAGE, out);
out:
    if (out)
        fclose(out);
}

int main(void)
{
    bm_log_init("test_agent", getenv("BM_TEST_DEBUG") ? BM_LOG_DEBUG : BM_LOG_ERROR);
    snprintf(s_root, sizeof s_root, "/tmp/test_agent.XXXXXX");
    if (!mkdtemp(s_root)) {
        perror("mkdtemp");
        return 2;
    }
    test_config();
    test_flow();
    test_give_up();
    test_recovery();
    test_spool_full();
    test_intake_rules();
    test_intake_files();
    test_recovery_done();
    test_status();
    bm_test_rmrf(s_root);
    if (bm_test_failures)
        fprintf(stderr, "test_agent: %d failure(s)\n", bm_test_failures);
    else
        printf("test_agent: all tests passed\n");
    return bm_test_failures ? 1 : 0;
}
