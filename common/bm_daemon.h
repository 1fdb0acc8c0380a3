/* bm_daemon: what the main() of every Branchmark daemon shares: its command
 * line (-c/--config FILE, --log-level LEVEL, --help, --version and an
 * optional subcommand such as "status") and the log level taken from the
 * command line or else the config file.
 * Owns nothing: the strings in bm_daemon_args_t point into argv. */
#ifndef BM_DAEMON_H
#define BM_DAEMON_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    const char *config_path;    /* -c/--config; required */
    const char *cli_level;      /* --log-level, NULL when not given */
    bool subcommand;            /* argv[1] was the subcommand named to the parser */
} bm_daemon_args_t;

/* Parses argv of program `prog`.  `subcommand` (may be NULL) is accepted as
 * the first argument.  usage(out) prints the help.  Returns -1 when the
 * program should go on, else its exit code: 0 after --help or --version
 * (printed on stdout), 2 after a usage error (printed on stderr). */
int bm_daemon_args(const char *prog, const char *version, int argc, char **argv,
                   const char *subcommand, void (*usage)(FILE *out), bm_daemon_args_t *out);

/* Sets the log threshold: --log-level wins over the config file's value;
 * an unknown name leaves info. */
void bm_daemon_set_level(const bm_daemon_args_t *args, const char *cfg_level);

#endif
