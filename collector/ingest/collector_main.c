/* branchmark-collector: receives envelopes from the branch agents over
 * ZeroMQ and stores them in PostgreSQL (receiver, store).  This file owns
 * the command line, the signal flags and the process lifetime.
 *
 *   branchmark-collector -c FILE [--log-level L]   serve
 *   branchmark-collector status -c FILE            print the status file
 *
 * SIGTERM/SIGINT: finish the message in hand, close, exit 0.  SIGHUP:
 * reload the reference data and the log level.  With metrics_listen set,
 * the metrics listener (metrics_http) serves the receiver's counters from
 * the start until shutdown; it is stopped before the receiver it reads. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm_daemon.h"
#include "bm_log.h"
#include "collector_config.h"
#include "metrics_http.h"
#include "receiver.h"

#ifndef BM_VERSION
#define BM_VERSION "0.1.0"
#endif

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_hup = 0;

static void s_on_stop(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_on_hup(int sig)
{
    (void)sig;
    s_hup = 1;
}

/* Without SA_RESTART, so a blocking call returns EINTR and the loop sees
 * the flag at once. */
static void s_install(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(sig, &sa, NULL);
}

static char *s_render_metrics(void *arg, size_t *len)
{
    return bm_receiver_metrics(arg, len);
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: branchmark-collector -c FILE [--log-level LEVEL]\n"
            "       branchmark-collector status -c FILE\n"
            "       branchmark-collector --help | --version\n\n"
            "Receives batches from branch agents (ZeroMQ ROUTER) and stores them in\n"
            "PostgreSQL, acknowledging each batch only after it is committed.\n"
            "SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the reference data and log_level.\n\n"
            "config keys (FILE has one `key = value` per line):\n");
    bm_config_print_help(out, bm_collector_config_map);
}

/* Prints the status file named by the config.  Returns the exit code. */
static int s_status(const char *config_path)
{
    bm_collector_config_t cfg;
    bm_err_t err;
    if (bm_collector_config_load(config_path, &cfg, &err) < 0) {
        fprintf(stderr, "branchmark-collector: %s\n", err.msg);
        bm_collector_config_free(&cfg);
        return 2;
    }
    if (!cfg.status_file || !*cfg.status_file) {
        fprintf(stderr, "branchmark-collector: %s: status_file is not set\n", config_path);
        bm_collector_config_free(&cfg);
        return 2;
    }
    FILE *fp = fopen(cfg.status_file, "r");
    if (!fp) {
        fprintf(stderr, "branchmark-collector: could not open status file \"%s\": %s\n",
                cfg.status_file, strerror(errno));
        bm_collector_config_free(&cfg);
        return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(fp);
    bm_collector_config_free(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    bm_daemon_args_t args;
    bm_log_init("branchmark-collector", BM_LOG_INFO);
    /* Memory per connected agent.  libzmq gives every TCP connection two
     * pipe chunks of 16 KiB and a receive buffer of 18 KiB, of which an
     * agent sending a few small messages writes the first page.  Below
     * glibc's default threshold (128 KiB) they come from the heap, partly
     * from pages that other, already freed allocations had touched, so
     * their unused parts count as resident too; mapped on their own, only
     * the pages libzmq writes are.  10,000 agents: VmHWM 266 -> 251 MiB
     * (docs/performance.md, "10,000 agents").  A fixed threshold also
     * turns glibc's dynamic one off: every allocation of 16 KiB or more
     * (a large batch message, its decoded record array) is an mmap and a
     * munmap, a few per batch. */
    mallopt(M_MMAP_THRESHOLD, 16 * 1024);
    int arc = bm_daemon_args("branchmark-collector", BM_VERSION, argc, argv, "status", s_usage,
                             &args);
    if (arc >= 0)
        return arc;
    const char *config_path = args.config_path;
    bool status = args.subcommand;
    if (status)
        return s_status(config_path);

    bm_collector_config_t cfg;
    bm_err_t err;
    if (bm_collector_config_load(config_path, &cfg, &err) < 0) {
        fprintf(stderr, "branchmark-collector: %s\n", err.msg);
        bm_collector_config_free(&cfg);
        return 2;
    }
    bm_daemon_set_level(&args, cfg.log_level);

    s_install(SIGTERM, s_on_stop);
    s_install(SIGINT, s_on_stop);
    s_install(SIGHUP, s_on_hup);
    signal(SIGPIPE, SIG_IGN);

    bm_receiver_t *recv = bm_receiver_new(&cfg, &err);
    if (!recv) {
        bm_error("main", "%s", err.msg);
        bm_collector_config_free(&cfg);
        return 1;
    }
    bm_metrics_http_t *metrics = NULL;
    if (*cfg.metrics_listen &&
        !(metrics = bm_metrics_http_start(cfg.metrics_listen, s_render_metrics, recv, &err))) {
        bm_error("main", "%s", err.msg);
        bm_receiver_destroy(&recv);
        bm_collector_config_free(&cfg);
        return 1;
    }
    bm_info("main", "started (version %s, config %s)", BM_VERSION, config_path);
    int rc = 0;
    for (;;) {
        if (bm_receiver_run(recv, &s_stop, &s_hup, &err) < 0) {
            bm_error("main", "%s", err.msg);
            rc = 1;
            break;
        }
        if (s_stop)
            break;
        if (s_hup) {
            s_hup = 0;
            /* Only log_level is re-read; other keys need a restart. */
            bm_collector_config_t fresh;
            bm_err_t rerr;
            if (bm_collector_config_load(config_path, &fresh, &rerr) < 0)
                bm_warn("main", "reload: config not re-read: %s", rerr.msg);
            else
                bm_daemon_set_level(&args, fresh.log_level);
            bm_collector_config_free(&fresh);
            bm_info("main", "SIGHUP: reloading reference data");
            bm_receiver_reload(recv);
        }
    }
    bm_metrics_http_stop(&metrics);
    bm_receiver_report(recv);
    bm_receiver_destroy(&recv);
    bm_collector_config_free(&cfg);
    bm_info("main", "stopped");
    return rc;
}
