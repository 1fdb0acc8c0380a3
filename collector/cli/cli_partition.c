/* cli_partition: `branchmark partition list|create|detach`, the monthly
 * partitions of the raw record tables (migration 006_scale, docs/scaling.md).
 *   list    every partition of every record table: range, rows, attached or
 *           detached;
 *   create  this month's and the next N months' partitions (run daily; rows
 *           waiting in a default partition move into their new month);
 *   detach  detaches (never drops) the monthly partitions that end on or
 *           before the first day of --before YYYY-MM.  The rollups keep their
 *           totals: they are separate tables, maintained when records arrive,
 *           and detaching deletes nothing.  A detached partition stays a
 *           plain table (same name) to archive, dump or drop by hand.
 * Which tables are partitioned, and by which column, is read from the table
 * bm_partitioned_tables.  Identifiers come from the catalogue and are quoted
 * with PQescapeIdentifier; values are parameters.  Owns nothing beyond one
 * command's run.  Exit codes as in cli.h.
 *
 * Why not pg_partman (Debian's postgresql-15-partman 4.7) with pg_cron:
 * the upkeep here is three verbs over native declarative partitions that
 * migration 006 already creates; pg_partman would add two server
 * extensions (installed by the DBA into every database server, with
 * superuser rights, and pg_cron's background worker in
 * shared_preload_libraries, i.e. a server restart) to replace this
 * file (about 400 lines), and its retention drops or detaches on its own
 * schedule, where ours never drops and moves rows out of the default partition
 * explicitly.  Managed PostgreSQL offerings often lack one of the two.
 * A chain that already runs pg_partman can let it own these tables: they
 * are plain monthly RANGE partitions (docs/scaling.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "output.h"

typedef struct {
    const char *db;
    const char *format;
    const char *ahead;
    const char *before;
    const char *table;
    int exact, dry_run, help;
} s_args_t;

static const char s_usage[] =
    "usage: branchmark partition list [--table T] [--exact] [--format table|csv|json]\n"
    "                                 [--db CONNINFO]\n"
    "       branchmark partition create --ahead N [--db CONNINFO]\n"
    "       branchmark partition detach --before YYYY-MM [--table T] [--dry-run]\n"
    "                                   [--format table|csv|json] [--db CONNINFO]\n"
    "The raw record tables (receipts, people_counts, queue_tickets, phone_calls,\n"
    "complaints, survey_responses, customer_changes) are partitioned by month of the\n"
    "record's time (UTC), with a default partition for times no month covers.\n"
    "  list    partitions, their range and rows (an estimate from the statistics;\n"
    "          --exact counts them)\n"
    "  create  creates the partitions of this month and N months ahead (0..120);\n"
    "          run it daily, e.g. from a systemd timer (docs/scaling.md)\n"
    "  detach  detaches every monthly partition that ends on or before the first\n"
    "          day of YYYY-MM.  Nothing is dropped: the partition stays a table of\n"
    "          its own, and the rollups (what every query reads) keep their totals.\n";

/* Returns -1 when parsed, else the exit code after printing the error. */
static int s_parse(int argc, char **argv, s_args_t *a)
{
    static const struct {
        const char *name;
        size_t off;             /* const char * field, or 0 */
        size_t flag;            /* int field, or 0 */
    } opts[] = {
        {"--db", offsetof(s_args_t, db), 0},
        {"--format", offsetof(s_args_t, format), 0},
        {"--ahead", offsetof(s_args_t, ahead), 0},
        {"--before", offsetof(s_args_t, before), 0},
        {"--table", offsetof(s_args_t, table), 0},
        {"--exact", 0, offsetof(s_args_t, exact)},
        {"--dry-run", 0, offsetof(s_args_t, dry_run)},
        {"--help", 0, offsetof(s_args_t, help)},
        {NULL, 0, 0},
    };
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        int k;
        for (k = 0; opts[k].name; k++)
            if (!strcmp(argv[i], opts[k].name))
                break;
        if (!opts[k].name) {
            fprintf(stderr, "branchmark partition: unknown argument \"%s\"\n%s", argv[i], s_usage);
            return 2;
        }
        if (opts[k].flag) {
            *(int *)((char *)a + opts[k].flag) = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "branchmark partition: option %s needs a value\n", argv[i]);
            return 2;
        }
        *(const char **)((char *)a + opts[k].off) = argv[++i];
    }
    return -1;
}

/* "YYYY-MM" into "YYYY-MM-01".  Returns 0, or -1 if not a month. */
static int s_month(const char *s, char out[11])
{
    if (strlen(s) != 7 || s[4] != '-')
        return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = atoi(s), m = atoi(s + 5);
    if (y < 1900 || y > 9999 || m < 1 || m > 12)
        return -1;
    snprintf(out, 11, "%04d-%02d-01", y, m);
    return 0;
}

/* Every partition of the record tables (or of `table`): table, partition,
 * from, to, rows estimate, state, has-default.  $1 = table or NULL. */
static const char s_list_sql[] =
    "WITH parts AS ("
    "  SELECT t.table_name, c.relname::text AS part, c.reltuples,"
    "         pg_get_expr(c.relpartbound, c.oid) AS bound, 'attached' AS state"
    "    FROM bm_partitioned_tables t"
    "    JOIN pg_inherits i ON i.inhparent = to_regclass(quote_ident(t.table_name))"
    "    JOIN pg_class c ON c.oid = i.inhrelid"
    "  UNION ALL"
    "  SELECT t.table_name, c.relname::text, c.reltuples,"
    "         NULL, 'detached'"
    "    FROM bm_partitioned_tables t"
    "    JOIN pg_class c ON c.relname ~ ('^' || t.table_name || '_p[0-9]{6}$')"
    "     AND c.relkind = 'r' AND NOT c.relispartition"
    "    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema())"
    " SELECT table_name, part,"
    "   CASE WHEN bound = 'DEFAULT' THEN '' WHEN bound IS NULL"
    "        THEN to_char(to_date(right(part, 6), 'YYYYMM'), 'YYYY-MM-DD')"
    "        ELSE to_char((regexp_match(bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz"
    "                     AT TIME ZONE 'UTC', 'YYYY-MM-DD') END,"
    "   CASE WHEN bound = 'DEFAULT' THEN '' WHEN bound IS NULL"
    "        THEN to_char(to_date(right(part, 6), 'YYYYMM') + interval '1 month', 'YYYY-MM-DD')"
    "        ELSE to_char((regexp_match(bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz"
    "                     AT TIME ZONE 'UTC', 'YYYY-MM-DD') END,"
    "   greatest(reltuples, 0)::bigint, CASE WHEN bound = 'DEFAULT' THEN 'default' ELSE state END,"
    "   EXISTS (SELECT 1 FROM pg_partitioned_table p"
    "            WHERE p.partrelid = to_regclass(quote_ident(table_name)) AND p.partdefid <> 0)"
    " FROM parts WHERE $1::text IS NULL OR table_name = $1"
    " ORDER BY table_name, state = 'default', part";

/* SELECT count(*) of one partition.  Returns the count, or -1 with err. */
static long long s_count(PGconn *conn, const char *part, bm_err_t *err)
{
    char *id = PQescapeIdentifier(conn, part, strlen(part));
    if (!id) {
        bm_err_set(err, "partition %s: %s", part, PQerrorMessage(conn));
        return -1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", id);
    PQfreemem(id);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char what[128];
        snprintf(what, sizeof what, "counting %s", part);
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return -1;
    }
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* Reads the partition list.  NULL with err on failure. */
static PGresult *s_list(PGconn *conn, const char *table, bm_err_t *err)
{
    const char *v[1] = {table};
    PGresult *res = PQexecParams(conn, s_list_sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "listing partitions (is the database migrated to 006?)", err);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* 0 when `table` is NULL or a partitioned record table; else -1 with err. */
static int s_check_table(PGconn *conn, const char *table, bm_err_t *err)
{
    if (!table)
        return 0;
    const char *v[1] = {table};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM bm_partitioned_tables WHERE table_name = $1",
                                 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_db_result_err(res, conn, "reading bm_partitioned_tables (is the database migrated?)",
                         err);
        PQclear(res);
        return -1;
    }
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found)
        return bm_err_set(err, "--table: \"%s\" is not a partitioned record table", table);
    return 0;
}

static int s_cmd_list(PGconn *conn, const s_args_t *a, bm_format_t fmt)
{
    bm_err_t err;
    PGresult *res = s_list(conn, a->table, &err);
    if (!res) {
        fprintf(stderr, "branchmark partition list: %s\n", err.msg);
        return 1;
    }
    static const char *const cols[] = {"table", "partition", "from", "to", "rows", "state"};
    bm_table_t *t = bm_table_new("partitions", 6, cols);
    bm_report_t *rep = bm_report_new();
    int rc = 0;
    for (int r = 0; t && rep && r < PQntuples(res); r++) {
        long long rows = atoll(PQgetvalue(res, r, 4));
        if (a->exact && (rows = s_count(conn, PQgetvalue(res, r, 1), &err)) < 0) {
            fprintf(stderr, "branchmark partition list: %s\n", err.msg);
            rc = 1;
            break;
        }
        bm_table_add_row(t);
        for (int c = 0; c < 4; c++)
            bm_table_set_text(t, c, PQgetvalue(res, r, c));
        bm_table_set_int(t, 4, rows);
        bm_table_set_text(t, 5, PQgetvalue(res, r, 5));
    }
    PQclear(res);
    if (!t || !rep) {
        fprintf(stderr, "branchmark partition list: out of memory\n");
        rc = 1;
    }
    if (rc == 0) {
        bm_report_add(rep, &t);
        bm_report_note(rep, "monthly ranges in UTC [from, to); rows: %s", a->exact
                                ? "counted" : "estimate from the statistics (--exact counts)");
        if (bm_report_print(rep, fmt, stdout) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "branchmark partition list: could not write the output\n");
            rc = 1;
        }
    }
    bm_table_destroy(&t);
    bm_report_destroy(&rep);
    return rc;
}

static int s_cmd_create(PGconn *conn, const s_args_t *a)
{
    char *end;
    long ahead = a->ahead ? strtol(a->ahead, &end, 10) : -1;
    if (!a->ahead || end == a->ahead || *end || ahead < 0 || ahead > 120) {
        fprintf(stderr, "branchmark partition create: --ahead: \"%s\" is not a number of "
                        "months 0..120\n", a->ahead ? a->ahead : "");
        return 2;
    }
    char n[16];
    snprintf(n, sizeof n, "%ld", ahead);
    const char *v[1] = {n};
    PGresult *res = PQexecParams(conn, "SELECT bm_partitions_ensure($1::int)", 1, NULL, v, NULL,
                                 NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bm_err_t err;
        bm_db_result_err(res, conn, "creating partitions", &err);
        fprintf(stderr, "branchmark partition create: %s\n", err.msg);
        PQclear(res);
        return 1;
    }
    printf("created %s partition(s): every record table has this month and %ld month(s) "
           "ahead\n", PQgetvalue(res, 0, 0), ahead);
    PQclear(res);
    return 0;
}

/* ALTER TABLE parent DETACH PARTITION part [CONCURRENTLY].  CONCURRENTLY
 * (no ACCESS EXCLUSIVE lock on the parent) only where PostgreSQL allows it:
 * never with a default partition, which every record table has.  Returns 0
 * or -1 with err. */
static int s_detach(PGconn *conn, const char *parent, const char *part, int concurrently,
                    bm_err_t *err)
{
    char *p = PQescapeIdentifier(conn, parent, strlen(parent));
    char *c = PQescapeIdentifier(conn, part, strlen(part));
    if (!p || !c) {
        PQfreemem(p);
        PQfreemem(c);
        return bm_err_set(err, "partition %s: %s", part, PQerrorMessage(conn));
    }
    char sql[512];
    snprintf(sql, sizeof sql, "ALTER TABLE %s DETACH PARTITION %s%s", p, c,
             concurrently ? " CONCURRENTLY" : "");
    PQfreemem(p);
    PQfreemem(c);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char what[128];
        snprintf(what, sizeof what, "detaching %s", part);
        bm_db_result_err(res, conn, what, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

static int s_cmd_detach(PGconn *conn, const s_args_t *a, bm_format_t fmt)
{
    char before[11];
    if (!a->before || s_month(a->before, before) < 0) {
        fprintf(stderr, "branchmark partition detach: --before: \"%s\" is not a month "
                        "YYYY-MM\n", a->before ? a->before : "");
        return 2;
    }
    bm_err_t err;
    PGresult *res = s_list(conn, a->table, &err);
    if (!res) {
        fprintf(stderr, "branchmark partition detach: %s\n", err.msg);
        return 1;
    }
    static const char *const cols[] = {"table", "partition", "from", "to", "rows", "detached"};
    bm_table_t *t = bm_table_new("detached", 6, cols);
    bm_report_t *rep = bm_report_new();
    int rc = t && rep ? 0 : 1, n = 0;
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        /* Attached monthly partitions whose range ends by `before`:
         * "YYYY-MM-DD" strings compare as dates. */
        if (strcmp(PQgetvalue(res, r, 5), "attached") || strcmp(PQgetvalue(res, r, 3), before) > 0)
            continue;
        int concurrently = strcmp(PQgetvalue(res, r, 6), "t") != 0;
        if (!a->dry_run &&
            s_detach(conn, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), concurrently, &err) < 0) {
            fprintf(stderr, "branchmark partition detach: %s\n", err.msg);
            rc = 1;
            break;
        }
        bm_table_add_row(t);
        for (int c = 0; c < 4; c++)
            bm_table_set_text(t, c, PQgetvalue(res, r, c));
        bm_table_set_int(t, 4, atoll(PQgetvalue(res, r, 4)));
        bm_table_set_text(t, 5, a->dry_run ? "no (dry run)"
                                : concurrently ? "concurrently" : "yes");
        n++;
    }
    PQclear(res);
    if (!t || !rep)
        fprintf(stderr, "branchmark partition detach: out of memory\n");
    if (t && rep) {
        bm_report_add(rep, &t);
        bm_report_note(rep, "%d partition(s) %s, ending on or before %s; nothing was dropped: "
                            "detached partitions stay tables of their own, and the rollups "
                            "(all that queries read) keep their totals", n,
                       a->dry_run ? "would be detached" : "detached", before);
        if (bm_report_print(rep, fmt, stdout) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "branchmark partition detach: could not write the output\n");
            rc = 1;
        }
    }
    bm_table_destroy(&t);
    bm_report_destroy(&rep);
    return rc;
}

int bm_cmd_partition(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(s_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") && strcmp(sub, "create") && strcmp(sub, "detach")) {
        fprintf(stderr, "branchmark partition: unknown subcommand \"%s\"\n%s", sub, s_usage);
        return 2;
    }
    s_args_t a;
    int rc = s_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.help) {
        fputs(s_usage, stdout);
        return 0;
    }
    bm_format_t fmt;
    bm_err_t err;
    if (bm_format_parse(a.format ? a.format : "table", &fmt, &err) < 0) {
        fprintf(stderr, "branchmark partition %s: %s\n", sub, err.msg);
        return 2;
    }
    if (a.table && (strlen(a.table) < 1 || strlen(a.table) > 63)) {
        fprintf(stderr, "branchmark partition %s: --table: must be 1..63 characters\n", sub);
        return 2;
    }
    PGconn *conn = bm_db_connect(a.db, "branchmark", &err);
    if (!conn) {
        fprintf(stderr, "branchmark partition %s: %s\n", sub, err.msg);
        return 1;
    }
    if (s_check_table(conn, a.table, &err) < 0) {
        fprintf(stderr, "branchmark partition %s: %s\n", sub, err.msg);
        bm_db_close(&conn);
        return 2;
    }
    if (!strcmp(sub, "list"))
        rc = s_cmd_list(conn, &a, fmt);
    else if (!strcmp(sub, "create"))
        rc = s_cmd_create(conn, &a);
    else
        rc = s_cmd_detach(conn, &a, fmt);
    bm_db_close(&conn);
    return rc;
}
