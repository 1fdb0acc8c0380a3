/* refdata: the reference data file (chain, regions, branches, competitor
 * outlets, questionnaires) — parsing, validation and loading into the
 * database.  docs/refdata.md documents the file for users.
 *
 * Two steps, so that the first is testable without a database:
 * - bm_refdata_parse reads and validates the whole file, naming the JSON
 *   path of every problem ("branches[3].region: unknown region \"EAST\"");
 * - bm_refdata_apply writes it in ONE transaction: upserts by code, keeps
 *   branch history in branch_versions, never overwrites a questionnaire
 *   version that evaluations refer to, never deletes anything.
 *
 * The parsed model is plain read-only data owned by bm_refdata_t; its
 * strings live as long as the bm_refdata_t. */
#ifndef BM_REFDATA_H
#define BM_REFDATA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bm_err.h"

/* Hard caps on a file; a file above them is refused, not truncated. */
#define BM_REFDATA_FILE_MAX (64u * 1024 * 1024)
#define BM_REFDATA_REGIONS_MAX 10000
#define BM_REFDATA_OUTLETS_MAX 100000      /* branches, and competitors */
#define BM_REFDATA_QUESTIONNAIRES_MAX 1000
#define BM_REFDATA_SECTIONS_MAX 100        /* per questionnaire */
#define BM_REFDATA_ITEMS_MAX 500           /* per questionnaire (= answers cap) */
#define BM_REFDATA_NAME_MAX 200            /* characters of a name or title */
#define BM_REFDATA_TEXT_MAX 2000           /* characters of an item text */

typedef struct {
    const char *code, *name, *timezone;
} bm_ref_chain_t;

typedef struct {
    const char *code, *name;
} bm_ref_region_t;

/* A branch (brand == NULL) or a competitor outlet. */
typedef struct {
    const char *code, *name, *brand;
    size_t region;                 /* index into bm_refdata_t.regions */
    bool has_position;             /* latitude/longitude given */
    double latitude, longitude;
    bool active;                   /* default true */
} bm_ref_outlet_t;

typedef enum {
    BM_CRIT_ZERO_SECTION = 0,
    BM_CRIT_ZERO_TOTAL,
    BM_CRIT_CAP,
} bm_critical_rule_t;

typedef struct {
    const char *code, *text;
    double max_points, weight;
    bool critical, bonus;
} bm_ref_item_t;

typedef struct {
    const char *code, *title;
    double weight;
    bm_critical_rule_t critical_rule;
    double cap_percent;            /* only with BM_CRIT_CAP */
    bm_ref_item_t *items;
    size_t n_items;
} bm_ref_section_t;

typedef struct {
    const char *code, *title;
    int version;
    bm_ref_section_t *sections;
    size_t n_sections;
    char content_sha256[65];       /* hex, of the canonical serialisation */
} bm_ref_questionnaire_t;

typedef struct bm_refdata {
    bm_ref_chain_t chain;
    bm_ref_region_t *regions;
    size_t n_regions;
    bm_ref_outlet_t *branches;
    size_t n_branches;
    bm_ref_outlet_t *competitors;
    size_t n_competitors;
    bm_ref_questionnaire_t *questionnaires;
    size_t n_questionnaires;
    void *priv;                    /* the JSON document the strings point into */
} bm_refdata_t;

/* Parses and validates a reference data document.  Everything that can be
 * checked without a database is checked here (the time zone name is checked
 * by bm_refdata_apply against pg_timezone_names).  Returns a new object, or
 * NULL with err naming the JSON path of the first problem. */
bm_refdata_t *bm_refdata_parse(const char *text, size_t len, bm_err_t *err);

/* Reads path (at most BM_REFDATA_FILE_MAX bytes) and parses it.  Returns
 * NULL with err prefixed by the file name on failure. */
bm_refdata_t *bm_refdata_read_file(const char *path, bm_err_t *err);

void bm_refdata_destroy(bm_refdata_t **rd_p);

const char *bm_critical_rule_name(bm_critical_rule_t rule);

/* What bm_refdata_apply did, per kind. */
typedef struct {
    int added, changed, unchanged;
} bm_refdata_count_t;

typedef struct {
    bm_refdata_count_t chain, regions, branches, competitors, questionnaires;
    int branches_kept;             /* in the database, not in the file */
    int competitors_kept;
} bm_refdata_report_t;

/* Writes rd into the database in one transaction (see the file comment for
 * the rules).  With dry_run the transaction is rolled back, so the report
 * says exactly what a real load would change.  Lines about individual
 * objects ("branch B004: not in file, kept") go to notes when it is not
 * NULL.  Returns 0, or -1 with err and nothing written (for example
 * "questionnaire STORE version 1 is used by 3 evaluations; publish the change
 * as version 2"). */
int bm_refdata_apply(PGconn *conn, const bm_refdata_t *rd, bool dry_run,
                     bm_refdata_report_t *report, FILE *notes, bm_err_t *err);

#endif
