/* cli_admin: the admin commands of `branchmark`: `migrate` (create or
 * upgrade the schema) and `refdata load|show` (reference data).  See cli.h
 * for the exit codes.  summary is a report command (cli_report.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "db.h"
#include "migrate.h"
#include "refdata.h"

static int s_print_rows(PGconn *conn, const char *title, const char *sql, const char *header,
                        const char *rowfmt, int ncols)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_err_t err;
        bm_db_result_err(res, conn, title, &err);
        fprintf(stderr, "branchmark: %s\n", err.msg);
        PQclear(res);
        return -1;
    }
    printf("%s (%d)\n", title, PQntuples(res));
    if (PQntuples(res) > 0)
        printf("%s\n", header);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *v[8] = {"", "", "", "", "", "", "", ""};
        for (int c = 0; c < ncols && c < 8; c++)
            v[c] = PQgetisnull(res, i, c) ? "-" : PQgetvalue(res, i, c);
        printf(rowfmt, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
    }
    printf("\n");
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------ */
/* migrate                                                             */
/* ------------------------------------------------------------------ */

static void s_migrate_usage(FILE *out)
{
    fprintf(out, "usage: branchmark migrate [--db CONNINFO]\n\n"
                 "Applies the pending schema migrations carried by this program (each in its\n"
                 "own transaction, under an advisory lock) and lists the applied ones.\n"
                 "An applied migration whose text changed is refused.\n");
}

int bm_cmd_migrate(int argc, char **argv)
{
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_migrate_usage(stdout);
            return 0;
        }
        if (!bm_cli_db_option(argc, argv, &i, &db)) {
            fprintf(stderr, "branchmark migrate: unexpected argument \"%s\"\n", argv[i]);
            s_migrate_usage(stderr);
            return 2;
        }
    }
    PGconn *conn = bm_cli_connect(db, NULL);
    if (!conn)
        return 1;
    bm_err_t err;
    int applied = 0;
    if (bm_migrate(conn, &applied, &err) < 0) {
        fprintf(stderr, "branchmark migrate: %s\n", err.msg);
        bm_db_close(&conn);
        return 1;
    }
    int rc = s_print_rows(conn, "applied migrations",
                          "SELECT version, name, left(checksum, 12), "
                          "to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS') || 'Z' "
                          "FROM schema_migrations ORDER BY version",
                          "version  name                          checksum      applied_at",
                          "%7s  %-28s  %-12s  %s\n", 4);
    int current = bm_migrate_current(conn, &err);
    if (current < 0) {
        fprintf(stderr, "branchmark migrate: %s\n", err.msg);
        rc = -1;
    } else {
        printf("applied now: %d; current version: %d\n", applied, current);
    }
    bm_db_close(&conn);
    return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* refdata                                                             */
/* ------------------------------------------------------------------ */

static void s_refdata_usage(FILE *out)
{
    fprintf(out, "usage: branchmark refdata load FILE [--db CONNINFO] [--dry-run]\n"
                 "       branchmark refdata show [--db CONNINFO]\n\n"
                 "load: validates FILE (see docs/refdata.md) and writes it in one transaction:\n"
                 "  regions, branches and competitors are upserted by code (a changed branch\n"
                 "  gets a new version, history is kept); nothing is deleted; a questionnaire\n"
                 "  version used by evaluations cannot change (publish a new version).\n"
                 "  --dry-run: report what would change and write nothing.\n"
                 "show: prints the current reference data.\n");
}

static void s_count_line(const char *kind, const bm_refdata_count_t *c)
{
    printf("%-16s %6d %8d %10d\n", kind, c->added, c->changed, c->unchanged);
}

static int s_refdata_load(const char *file, const char *db, bool dry_run)
{
    bm_err_t err;
    bm_refdata_t *rd = bm_refdata_read_file(file, &err);
    if (!rd) {
        fprintf(stderr, "branchmark refdata: %s\n", err.msg);
        return 2;
    }
    PGconn *conn = bm_cli_connect(db, NULL);
    if (!conn) {
        bm_refdata_destroy(&rd);
        return 1;
    }
    bm_refdata_report_t rep;
    int rc = bm_refdata_apply(conn, rd, dry_run, &rep, stdout, &err);
    if (rc < 0) {
        fprintf(stderr, "branchmark refdata: %s: %s\n", file, err.msg);
        /* Content problems (time zone, questionnaire in use, wrong chain)
         * are the file's fault; a lost connection is not. */
        rc = PQstatus(conn) == CONNECTION_OK ? 2 : 1;
    } else {
        printf("%s%s (chain %s)\n", dry_run ? "dry run, nothing written: " : "loaded ", file,
               rd->chain.code);
        printf("%-16s %6s %8s %10s\n", "kind", "added", "changed", "unchanged");
        s_count_line("chain", &rep.chain);
        s_count_line("regions", &rep.regions);
        s_count_line("branches", &rep.branches);
        s_count_line("competitors", &rep.competitors);
        s_count_line("questionnaires", &rep.questionnaires);
        if (rep.branches_kept || rep.competitors_kept)
            printf("not in file, kept: %d branch%s, %d competitor%s\n", rep.branches_kept,
                   rep.branches_kept == 1 ? "" : "es", rep.competitors_kept,
                   rep.competitors_kept == 1 ? "" : "s");
        rc = 0;
    }
    bm_db_close(&conn);
    bm_refdata_destroy(&rd);
    return rc;
}

static int s_refdata_show(const char *db)
{
    PGconn *conn = bm_cli_connect(db, NULL);
    if (!conn)
        return 1;
    int rc = 0;
    PGresult *res = PQexec(conn, "SELECT code, name, timezone FROM chain");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        printf("chain %s \"%s\" (time zone %s)\n\n", PQgetvalue(res, 0, 0),
               PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    else if (PQresultStatus(res) == PGRES_TUPLES_OK)
        printf("no reference data loaded (branchmark refdata load FILE)\n\n");
    PQclear(res);
    if (s_print_rows(conn, "regions",
                     "SELECT r.code, (SELECT count(*) FROM branches b WHERE b.region_id = r.id), r.name "
                     "FROM regions r ORDER BY r.code",
                     "code      branches  name", "%-8s  %8s  %s\n", 3) < 0 ||
        s_print_rows(conn, "branches",
                     "SELECT b.code, r.code, b.version, CASE WHEN b.active THEN 'yes' ELSE 'no' END, "
                     "CASE WHEN b.latitude IS NULL THEN '-' ELSE round(b.latitude::numeric, 5) || ',' "
                     "|| round(b.longitude::numeric, 5) END, b.name "
                     "FROM branches b JOIN regions r ON r.id = b.region_id ORDER BY b.code",
                     "code      region    version  active  position              name",
                     "%-8s  %-8s  %7s  %-6s  %-20s  %s\n", 6) < 0 ||
        s_print_rows(conn, "competitors",
                     "SELECT c.code, r.code, CASE WHEN c.active THEN 'yes' ELSE 'no' END, c.brand, c.name "
                     "FROM competitor_outlets c JOIN regions r ON r.id = c.region_id ORDER BY c.code",
                     "code      region    active  brand             name",
                     "%-8s  %-8s  %-6s  %-16s  %s\n", 5) < 0 ||
        s_print_rows(conn, "questionnaires",
                     "SELECT q.code, q.version, "
                     "(SELECT count(*) FROM questionnaire_sections s WHERE s.questionnaire_id = q.id), "
                     "(SELECT count(*) FROM questionnaire_items i WHERE i.questionnaire_id = q.id), "
                     "(SELECT count(*) FROM evaluations e WHERE e.questionnaire_id = q.id), "
                     "left(q.content_sha256, 12), q.title "
                     "FROM questionnaires q ORDER BY q.code, q.version",
                     "code      version  sections  items  evaluations  sha256        title",
                     "%-8s  %7s  %8s  %5s  %11s  %-12s  %s\n", 7) < 0)
        rc = 1;
    bm_db_close(&conn);
    return rc;
}

int bm_cmd_refdata(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        s_refdata_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *db = NULL, *file = NULL;
    bool dry_run = false;
    for (int i = 2; i < argc; i++) {
        if (bm_cli_db_option(argc, argv, &i, &db))
            continue;
        if (!strcmp(argv[i], "--dry-run") && !strcmp(sub, "load"))
            dry_run = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_refdata_usage(stdout);
            return 0;
        } else if (!strcmp(sub, "load") && !file && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "branchmark refdata: unexpected argument \"%s\"\n", argv[i]);
            s_refdata_usage(stderr);
            return 2;
        }
    }
    if (!strcmp(sub, "load")) {
        if (!file) {
            fprintf(stderr, "branchmark refdata load: FILE is required\n");
            return 2;
        }
        return s_refdata_load(file, db, dry_run);
    }
    if (!strcmp(sub, "show"))
        return s_refdata_show(db);
    fprintf(stderr, "branchmark refdata: unknown subcommand \"%s\" (load or show)\n", sub);
    s_refdata_usage(stderr);
    return 2;
}
