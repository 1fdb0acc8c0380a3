/* branchmark-agent: the branch agent program.
 *
 *   branchmark-agent -c FILE [--log-level L]     run
 *   branchmark-agent status -c FILE [--json]     show the running agent's status
 *   branchmark-agent --help | --version
 *
 * One thread runs one loop: poll the collector socket (at most 250 ms, so
 * signal flags are seen), apply replies, move acknowledged files, list the
 * inbox every scan_interval, take one file at a time, write status.json
 * (and branchmark-agent.prom, its node_exporter textfile, next to it).
 * Signals only set flags: SIGTERM/SIGINT stop at the next record boundary,
 * SIGHUP re-reads the config file.
 * Owns: the process (signals, the data_dir lock) and every module object. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_config.h"
#include "agent_status.h"
#include "bm_log.h"
#include "bm_time.h"
#include "deadletter.h"
#include "inbox.h"
#include "sender.h"
#include "spool.h"

#define COMP "agent"
#define BM_LOOP_MAX_WAIT_MS 250
#define BM_STATUS_EVERY_MS 1000

#ifndef BM_VERSION
#define BM_VERSION "0.1.0"
#endif

static volatile sig_atomic_t s_stop_flag;
static volatile sig_atomic_t s_reload_flag;

static void s_on_stop(int sig)
{
    (void)sig;
    s_stop_flag = 1;
}

static void s_on_hup(int sig)
{
    (void)sig;
    s_reload_flag = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: branchmark-agent -c FILE [--log-level debug|info|warn|error]\n"
            "       branchmark-agent status -c FILE [--json]\n"
            "       branchmark-agent --help | --version\n"
            "\n"
            "Takes export files dropped into the inbox, spools them durably and sends\n"
            "them to the collector; see docs/agent.md.\n"
            "\n"
            "status exit codes: 0 running and healthy, 1 not running, 2 usage or\n"
            "unreadable status, 3 running but refused by the collector or spool full,\n"
            "4 running but files are stuck in the inbox (status names them).\n"
            "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the config file.\n"
            "\n"
            "Config file keys (key = value; durations take ms/s/m/h, sizes K/M/G):\n");
    bm_agent_config_print_help(out);
}

typedef struct {
    bm_agent_config_t cfg;
    const char *config_path;
    bool log_level_override;
    bm_log_level_t log_level;
    bm_spool_t *spool;
    bm_deadletter_t *dl;
    bm_inbox_t *inbox;
    bm_sender_t *sender;
    int lock_fd;
    int64_t started_ms;
    char *last_status;     /* last status written, without updated_at */
    int64_t last_status_mono;
    int64_t last_prom_mono; /* branchmark-agent.prom last written */
} s_agent_t;

/* ---- status ---- */

static void s_fill_status(s_agent_t *a, bm_agent_status_t *st, bool running)
{
    memset(st, 0, sizeof *st);
    bm_spool_stats_t sp;
    bm_inbox_info_t ii;
    bm_sender_info_t si;
    bm_spool_stats(a->spool, &sp);
    bm_inbox_info(a->inbox, &ii);
    bm_sender_info(a->sender, &si);
    st->pid = (int)getpid();
    st->running = running;
    st->started_ms = a->started_ms;
    snprintf(st->agent_id, sizeof st->agent_id, "%s", a->cfg.agent_id);
    snprintf(st->branch, sizeof st->branch, "%s", a->cfg.branch);
    snprintf(st->stream_id, sizeof st->stream_id, "%s", bm_spool_stream_id(a->spool));
    snprintf(st->state, sizeof st->state, "%s", running ? si.state : "disconnected");
    snprintf(st->endpoint, sizeof st->endpoint, "%s", si.endpoint);
    st->spool_entries = sp.entries;
    st->spool_bytes = sp.bytes;
    st->spool_max_bytes = (uint64_t)a->cfg.spool_max_bytes;
    st->spool_full = ii.spool_full;
    if (sp.oldest_unacked_ms > 0) {
        int64_t age = (bm_now_ms() - sp.oldest_unacked_ms) / 1000;
        st->oldest_unsent_age_s = age > 0 ? age : 0;
    }
    st->last_ack_ms = si.last_ack_ms;
    st->acked_seq = sp.acked_seq;
    st->next_seq = sp.next_seq;
    st->files_pending = ii.files_pending;
    st->files_done = ii.files_done;
    st->files_rejected = ii.files_rejected;
    st->files_waiting = ii.files_waiting;
    st->files_stuck = ii.files_stuck;
    const char *name, *why;
    for (size_t i = 0; i < BM_STATUS_STUCK_SHOWN && bm_inbox_stuck(a->inbox, i, &name, &why);
         i++) {
        snprintf(st->stuck_name[i], sizeof st->stuck_name[i], "%s", name);
        snprintf(st->stuck_why[i], sizeof st->stuck_why[i], "%s", why);
        st->n_stuck_shown = i + 1;
    }
    st->lines_bad = ii.lines_bad;
    st->records_spooled = ii.records_spooled;
    st->records_sent = si.records_sent;
    st->records_acked = si.records_acked;
    st->records_rejected = si.records_rejected;
    st->records_deadlettered = si.records_deadlettered;
    st->clock_skew_known = si.clock_skew_known;
    st->clock_skew_ms = si.clock_skew_ms;
    snprintf(st->last_error, sizeof st->last_error, "%s", si.last_error);
    st->last_error_ms = si.last_error_ms;
}

/* Writes branchmark-agent.prom (node_exporter's textfile) for st. */
static void s_write_prom(s_agent_t *a, const bm_agent_status_t *st)
{
    a->last_prom_mono = bm_mono_ms();
    char *text = bm_agent_status_prom(st, bm_now_ms());
    bm_err_t err = {{0}};
    if (text && bm_agent_status_write_prom(a->cfg.data_dir, text, &err) < 0)
        bm_warn(COMP, "%s", err.msg);
    free(text);
}

/* Writes status.json when something changed, at most once a second (always
 * when force), and the textfile with it (or every BM_STATUS_PROM_EVERY_MS). */
static void s_write_status(s_agent_t *a, bool running, bool force)
{
    int64_t now = bm_mono_ms();
    if (!force && now - a->last_status_mono < BM_STATUS_EVERY_MS)
        return;
    a->last_status_mono = now;
    bm_agent_status_t st;
    s_fill_status(a, &st, running);
    char *content = bm_agent_status_json(&st);
    if (!content)
        return;
    bool same = !force && a->last_status && strcmp(content, a->last_status) == 0;
    /* The textfile's ages (last ack) grow while nothing changes. */
    if (!same || now - a->last_prom_mono >= BM_STATUS_PROM_EVERY_MS)
        s_write_prom(a, &st);
    if (same) {
        free(content);
        return;
    }
    st.updated_ms = bm_now_ms();
    char *json = bm_agent_status_json(&st);
    bm_err_t err = {{0}};
    if (json && bm_agent_status_write(a->cfg.data_dir, json, &err) < 0)
        bm_warn(COMP, "%s", err.msg);
    free(json);
    free(a->last_status);
    a->last_status = content;
}

/* ---- reload ---- */

static void s_keep_old(char **newv, const char *oldv, const char *key)
{
    if (strcmp(*newv, oldv) == 0)
        return;
    bm_warn(COMP, "%s cannot change while the agent runs (\"%s\" -> \"%s\"); keeping \"%s\" "
            "until restart", key, oldv, *newv, oldv);
    char *copy = strdup(oldv);
    if (copy) {
        free(*newv);
        *newv = copy;
    }
}

static void s_reload(s_agent_t *a)
{
    bm_agent_config_t n;
    memset(&n, 0, sizeof n);
    bm_err_t err = {{0}};
    if (bm_agent_config_load(a->config_path, &n, &err) < 0) {
        bm_warn(COMP, "could not reload the configuration: %s; keeping the current one",
                err.msg);
        bm_agent_config_free(&n);
        return;
    }
    s_keep_old(&n.agent_id, a->cfg.agent_id, "agent_id");
    s_keep_old(&n.branch, a->cfg.branch, "branch");
    s_keep_old(&n.data_dir, a->cfg.data_dir, "data_dir");
    s_keep_old(&n.inbox_dir, a->cfg.inbox_dir, "inbox_dir");
    if (n.segment_bytes != a->cfg.segment_bytes) {
        bm_info(COMP, "segment_bytes takes effect at the next start");
        n.segment_bytes = a->cfg.segment_bytes;
    }
    bm_agent_config_free(&a->cfg);
    a->cfg = n;
    if (!a->log_level_override)
        bm_log_threshold = a->cfg.log_level_value;
    bm_sender_reconfigure(a->sender);
    bm_info(COMP, "configuration reloaded from \"%s\"", a->config_path);
}

/* ---- start and stop ---- */

static int s_lock_data_dir(s_agent_t *a, bm_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/agent.lock", a->cfg.data_dir);
    a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (a->lock_fd < 0)
        return bm_err_set(err, "could not open lock file \"%s\": %s", path, strerror(errno));
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return bm_err_set(err, "another agent is already running with data_dir \"%s\"",
                              a->cfg.data_dir);
        return bm_err_set(err, "could not lock \"%s\": %s", path, strerror(errno));
    }
    return 0;
}

/* The sender's refusals go into the file's .errors (docs/agent.md). */
static void s_on_refused(void *ctx, const char *origin_file, const char *source_id,
                         const char *reason)
{
    bm_inbox_note_refused(ctx, origin_file, source_id, reason);
}

static int s_start(s_agent_t *a, bm_err_t *err)
{
    if (mkdir(a->cfg.data_dir, 0750) < 0 && errno != EEXIST)
        return bm_err_set(err, "could not create data_dir \"%s\": %s", a->cfg.data_dir,
                          strerror(errno));
    if (s_lock_data_dir(a, err) < 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/spool", a->cfg.data_dir);
    if (!(a->spool = bm_spool_open(path, (uint64_t)a->cfg.segment_bytes, err)))
        return -1;
    bm_spool_stats_t sp;
    bm_spool_stats(a->spool, &sp);
    if (sp.torn_bytes_cut)
        bm_warn(COMP, "the spool ended in a torn write (power loss?): %" PRIu64 " bytes cut "
                "off; those records were not yet taken from the inbox and are read again",
                sp.torn_bytes_cut);
    snprintf(path, sizeof path, "%s/deadletter", a->cfg.data_dir);
    if (!(a->dl = bm_deadletter_open(path, err)))
        return -1;
    if (!(a->inbox = bm_inbox_new(&a->cfg, a->spool, &s_stop_flag, err)))
        return -1;
    if (bm_inbox_recover(a->inbox, err) < 0)
        return -1;
    if (!(a->sender = bm_sender_new(&a->cfg, a->spool, a->dl, err)))
        return -1;
    bm_sender_on_refused(a->sender, s_on_refused, a->inbox);
    return 0;
}

static void s_close_all(s_agent_t *a)
{
    bm_sender_destroy(&a->sender);
    bm_inbox_destroy(&a->inbox);
    bm_deadletter_close(&a->dl);
    bm_spool_close(&a->spool);
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    a->lock_fd = -1;
    free(a->last_status);
    a->last_status = NULL;
    bm_agent_config_free(&a->cfg);
}

static void s_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking call returns and the loop sees the flag */
    sa.sa_handler = s_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = s_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void s_run_loop(s_agent_t *a)
{
    int64_t next_scan = 0, last_scan_error_log = 0;
    bool more_files = false;
    char last_scan_error[BM_ERR_MSG_MAX] = "";
    while (!s_stop_flag) {
        if (s_reload_flag) {
            s_reload_flag = 0;
            s_reload(a);
        }
        int64_t now = bm_mono_ms();
        int timeout = BM_LOOP_MAX_WAIT_MS;
        if (more_files)
            timeout = 0;
        else if (next_scan - now < timeout)
            timeout = next_scan > now ? (int)(next_scan - now) : 0;
        timeout = bm_sender_timeout_ms(a->sender, timeout);
        bm_sender_wait(a->sender, timeout);
        if (s_stop_flag)
            break;
        bm_sender_process(a->sender);
        bm_inbox_finalize(a->inbox);

        now = bm_mono_ms();
        if (now >= next_scan) {
            next_scan = now + a->cfg.scan_interval_ms;
            bm_err_t err = {{0}};
            if (bm_inbox_scan(a->inbox, &err) < 0) {
                if (strcmp(err.msg, last_scan_error) != 0 || now - last_scan_error_log > 60000) {
                    bm_error(COMP, "%s", err.msg);
                    snprintf(last_scan_error, sizeof last_scan_error, "%s", err.msg);
                    last_scan_error_log = now;
                }
            } else {
                last_scan_error[0] = '\0';
            }
        }
        bm_err_t err = {{0}};
        more_files = bm_inbox_take_next(a->inbox, &err) == 1;
        s_write_status(a, true, false);
    }
}

static int s_run(const char *config_path, const char *log_level)
{
    s_agent_t a;
    memset(&a, 0, sizeof a);
    a.lock_fd = -1;
    a.config_path = config_path;
    bm_err_t err = {{0}};
    if (bm_agent_config_load(config_path, &a.cfg, &err) < 0) {
        fprintf(stderr, "branchmark-agent: %s\n", err.msg);
        bm_agent_config_free(&a.cfg);
        return 2;
    }
    bm_log_level_t level = a.cfg.log_level_value;
    if (log_level) {
        if (bm_log_level_parse(log_level, &level) < 0) {
            fprintf(stderr, "branchmark-agent: --log-level: \"%s\" is not one of debug, "
                    "info, warn, error\n", log_level);
            bm_agent_config_free(&a.cfg);
            return 2;
        }
        a.log_level_override = true;
    }
    bm_log_init("branchmark-agent", level);
    s_install_signals();
    a.started_ms = bm_now_ms();
    if (s_start(&a, &err) < 0) {
        bm_error(COMP, "cannot start: %s", err.msg);
        s_close_all(&a);
        return 1;
    }
    bm_info(COMP, "started: agent %s, branch %s, stream %s, %zu collector endpoint(s), "
            "data_dir \"%s\", inbox \"%s\"", a.cfg.agent_id, a.cfg.branch,
            bm_spool_stream_id(a.spool), a.cfg.collector.count, a.cfg.data_dir,
            a.cfg.inbox_dir);
    s_write_status(&a, true, true);

    s_run_loop(&a);

    bm_info(COMP, "stopping");
    if (bm_spool_sync(a.spool, &err) < 0)
        bm_error(COMP, "could not sync the spool: %s", err.msg);
    s_write_status(&a, false, true);
    s_close_all(&a);
    bm_info(COMP, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *log_level = NULL;
    bool status_cmd = false, as_json = false;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "status") == 0) {
        status_cmd = true;
        first = 2;
    }
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    optind = first;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("branchmark-agent %s (protocol 1)\n", BM_VERSION);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "branchmark-agent: unexpected argument \"%s\"\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "branchmark-agent: -c FILE is required\n");
        s_usage(stderr);
        return 2;
    }
    if (as_json && !status_cmd) {
        fprintf(stderr, "branchmark-agent: --json belongs to the status subcommand\n");
        return 2;
    }
    if (status_cmd) {
        if (log_level) {
            fprintf(stderr, "branchmark-agent: --log-level does not apply to status\n");
            return 2;
        }
        bm_agent_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        bm_err_t err = {{0}};
        if (bm_agent_config_load(config, &cfg, &err) < 0) {
            fprintf(stderr, "branchmark-agent: %s\n", err.msg);
            bm_agent_config_free(&cfg);
            return BM_STATUS_EXIT_USAGE;
        }
        int rc = bm_agent_status_show(cfg.data_dir, as_json, stdout, stderr);
        bm_agent_config_free(&cfg);
        return rc;
    }
    return s_run(config, log_level);
}
