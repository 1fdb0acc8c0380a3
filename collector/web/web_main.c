/* branchmark-web: the HQ dashboard's HTTP server, a JSON API over the same
 * queries as the `branchmark` CLI plus the web page's static files
 * (docs/api.md).  This file owns the command line, the signals and the
 * process lifetime; web_server.c the HTTP plumbing, web_api.c the
 * endpoints, web_session.c the logins.
 *
 *   branchmark-web -c FILE [--log-level L]
 *
 * SIGTERM/SIGINT: stop accepting, finish running requests, close every
 * session, exit 0.  SIGHUP: re-read log_level. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bm_daemon.h"
#include "bm_log.h"
#include "web_api.h"
#include "web_config.h"
#include "web_server.h"

#ifndef BM_VERSION
#define BM_VERSION "0.1.0"
#endif

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: branchmark-web -c FILE [--log-level LEVEL]\n"
            "       branchmark-web --help | --version\n\n"
            "Serves the Branchmark dashboard and its JSON API (docs/api.md).  People log\n"
            "in with their own PostgreSQL user; row-level security decides what they see.\n"
            "SIGTERM/SIGINT stop it cleanly; SIGHUP re-reads log_level.\n\n"
            "config keys (FILE has one `key = value` per line):\n");
    bm_config_print_help(out, bm_web_config_map);
}

int main(int argc, char **argv)
{
    bm_daemon_args_t args;
    bm_log_init("branchmark-web", BM_LOG_INFO);
    /* A chain-wide ranking allocates and frees tens of MiB per request;
     * with glibc's default thresholds a persistent connection answered the
     * nps chain rank in 94 ms p50, with these (the GLIBC_TUNABLES of
     * bench/perf.sh's "malloc tunables" run) in 53 ms.  Freed memory is then
     * kept for the next request instead of going back to the kernel. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    int arc = bm_daemon_args("branchmark-web", BM_VERSION, argc, argv, NULL, s_usage, &args);
    if (arc >= 0)
        return arc;
    const char *config_path = args.config_path;
    bm_web_config_t cfg;
    bm_err_t err;
    if (bm_web_config_load(config_path, &cfg, &err) < 0) {
        fprintf(stderr, "branchmark-web: %s\n", err.msg);
        bm_web_config_free(&cfg);
        return 2;
    }
    bm_daemon_set_level(&args, cfg.log_level);

    /* The signals are taken synchronously by this thread (sigtimedwait);
     * blocked before any thread starts, so every thread inherits the mask
     * and none is interrupted by them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 0;
    bm_web_api_t *api = bm_web_api_new(&cfg, &err);
    bm_web_server_t *server = NULL;
    if (api) {
        bm_web_server_opts_t so = {
            .address = cfg.listen_address,
            .port = (int)cfg.port,
            .max_connections = (unsigned)cfg.max_connections,
            .max_connections_per_ip = (unsigned)cfg.max_connections_per_ip,
            .timeout_s = (unsigned)((cfg.request_timeout_ms + 999) / 1000),
            .request_deadline_s = (unsigned)((cfg.request_deadline_ms + 999) / 1000),
            .max_body = (size_t)cfg.max_body,
        };
        server = bm_web_server_new(&so, bm_web_api_handle, api, &err);
    }
    if (!server) {
        bm_error("main", "%s", err.msg);
        rc = 1;
    } else {
        bm_info("main", "started (version %s, config %s): http://%s%s%s:%lld/ static_dir %s",
                BM_VERSION, config_path, strchr(cfg.listen_address, ':') ? "[" : "",
                cfg.listen_address, strchr(cfg.listen_address, ':') ? "]" : "",
                (long long)cfg.port, cfg.static_dir);
        for (;;) {
            struct timespec tick = {1, 0};
            int sig = sigtimedwait(&sigs, NULL, &tick);
            if (sig == SIGTERM || sig == SIGINT) {
                bm_info("main", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (sig == SIGHUP) {
                bm_web_config_t fresh;
                bm_err_t rerr;
                if (bm_web_config_load(config_path, &fresh, &rerr) < 0)
                    bm_warn("main", "reload: config not re-read: %s", rerr.msg);
                else
                    bm_daemon_set_level(&args, fresh.log_level);
                bm_web_config_free(&fresh);
            }
            bm_web_api_tick(api);
        }
    }
    bm_web_server_destroy(&server);
    if (api)
        bm_web_api_report(api);
    bm_web_api_destroy(&api);
    bm_web_config_free(&cfg);
    bm_info("main", "stopped");
    return rc;
}
