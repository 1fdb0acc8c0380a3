/* cli_workflow: placeholder until its commands are written; each command says so. */
#include <stdio.h>
#include "cli.h"
int bm_cmd_review(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: review is not implemented yet\n");
    return 2;
}
int bm_cmd_appeal(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: appeal is not implemented yet\n");
    return 2;
}
int bm_cmd_retention(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: retention is not implemented yet\n");
    return 2;
}
int bm_cmd_readiness(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "branchmark: readiness is not implemented yet\n");
    return 2;
}
