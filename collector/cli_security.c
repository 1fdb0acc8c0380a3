/* cli_security: placeholder until its commands are written; each command says so. */
#include <stdio.h>
#include "cli.h"
int bm_cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: keygen is not implemented yet\n");
    return 2;
}
int bm_cmd_agent(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: agent is not implemented yet\n");
    return 2;
}
int bm_cmd_user(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: user is not implemented yet\n");
    return 2;
}
