/* bm_daemon: the shared daemon command line; see bm_daemon.h. */
#include "bm_daemon.h"

#include <string.h>

#include "bm_log.h"

int bm_daemon_args(const char *prog, const char *version, int argc, char **argv,
                   const char *subcommand, void (*usage)(FILE *out), bm_daemon_args_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("%s %s\n", prog, version);
            return 0;
        } else if (subcommand && !strcmp(a, subcommand) && i == 1) {
            out->subcommand = true;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            out->config_path = argv[++i];
        } else if (!strcmp(a, "--log-level") && i + 1 < argc) {
            out->cli_level = argv[++i];
            bm_log_level_t level;
            if (bm_log_level_parse(out->cli_level, &level) < 0) {
                fprintf(stderr, "%s: --log-level: \"%s\" is not one of debug, info, warn, "
                        "error\n", prog, out->cli_level);
                return 2;
            }
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, a);
            usage(stderr);
            return 2;
        }
    }
    if (!out->config_path) {
        fprintf(stderr, "%s: -c FILE is required\n", prog);
        usage(stderr);
        return 2;
    }
    return -1;
}

void bm_daemon_set_level(const bm_daemon_args_t *args, const char *cfg_level)
{
    bm_log_level_t level = BM_LOG_INFO;
    if (bm_log_level_parse(args->cli_level ? args->cli_level : cfg_level, &level) == 0)
        bm_log_threshold = level;
}
