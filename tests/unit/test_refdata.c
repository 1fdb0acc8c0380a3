/* test_refdata: parsing and validation of the reference data file
 * (collector/schema/refdata.c), without a database: a good file, the canonical
 * questionnaire hash, and each validation error with its JSON path.
 * Loading into PostgreSQL (time zone check, versioning) is covered by the
 * integration tests. */
#include "bm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refdata.h"

/* A small valid document; the parts a test varies are arguments. */
static char *s_doc(const char *chain_tz, const char *branches, const char *sections)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"chain\": {\"code\": \"ACME\", \"name\": \"Acme\", \"timezone\": \"%s\"},\n"
             " \"regions\": [{\"code\": \"NORTH\", \"name\": \"North\"},\n"
             "               {\"code\": \"SOUTH\", \"name\": \"South\"}],\n"
             " \"branches\": [%s],\n"
             " \"competitors\": [{\"code\": \"C001\", \"name\": \"Rival\", \"brand\": \"R\","
             " \"region\": \"NORTH\"}],\n"
             " \"questionnaires\": [{\"code\": \"STORE\", \"version\": 1, \"title\": \"Visit\",\n"
             "   \"sections\": [%s]}]}\n",
             chain_tz, branches, sections);
    return buf;
}

#define S_BRANCHES "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"NORTH\"}"
#define S_SECTIONS                                                                        \
    "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": ["                         \
    "{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 1}]}"

/* Parses doc, expects failure and a message equal to (or, with prefix,
 * starting with) want. */
static void s_expect_error(int line, const char *doc, const char *want, bool prefix)
{
    bm_err_t err = {{0}};
    bm_refdata_t *rd = bm_refdata_parse(doc, strlen(doc), &err);
    bool ok = rd == NULL &&
              (prefix ? strncmp(err.msg, want, strlen(want)) == 0 : strcmp(err.msg, want) == 0);
    if (!ok) {
        fprintf(stderr, "%s:%d: expected error \"%s\", got %s \"%s\"\n", __FILE__, line, want,
                rd ? "success" : "error", rd ? "" : err.msg);
        bm_test_failures++;
    }
    bm_refdata_destroy(&rd);
}

#define EXPECT_ERROR(doc, want) s_expect_error(__LINE__, (doc), (want), false)
#define EXPECT_ERROR_PREFIX(doc, want) s_expect_error(__LINE__, (doc), (want), true)

static void test_good_file(void)
{
    const char *dir = getenv("BM_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/refdata/demo-small.json", dir ? dir : "../tests/data");
    bm_err_t err = {{0}};
    bm_refdata_t *rd = bm_refdata_read_file(path, &err);
    if (!rd) {
        fprintf(stderr, "could not read %s: %s\n", path, err.msg);
        bm_test_failures++;
        return;
    }
    CHECK(strcmp(rd->chain.code, "ACME") == 0);
    CHECK(strcmp(rd->chain.timezone, "Europe/Sofia") == 0);
    CHECK(rd->n_regions == 2);
    CHECK(rd->n_branches == 4);
    CHECK(rd->n_competitors == 2);
    CHECK(rd->n_questionnaires == 1);
    CHECK(strcmp(rd->branches[2].code, "B003") == 0);
    CHECK(strcmp(rd->regions[rd->branches[2].region].code, "SOUTH") == 0);
    CHECK(rd->branches[0].has_position && rd->branches[0].latitude == 42.6977);
    CHECK(!rd->branches[3].has_position);
    CHECK(rd->branches[3].active);
    CHECK(strcmp(rd->competitors[0].brand, "Rival") == 0);

    const bm_ref_questionnaire_t *q = &rd->questionnaires[0];
    CHECK(strcmp(q->code, "STORE") == 0 && q->version == 1);
    CHECK(q->n_sections == 3);
    CHECK(q->sections[0].critical_rule == BM_CRIT_ZERO_SECTION);
    CHECK(q->sections[1].critical_rule == BM_CRIT_CAP && q->sections[1].cap_percent == 50);
    CHECK(q->sections[2].critical_rule == BM_CRIT_ZERO_TOTAL);
    CHECK(q->sections[0].n_items == 3 && q->sections[0].items[2].critical);
    CHECK(q->sections[1].items[0].weight == 1.5 && q->sections[1].items[0].max_points == 2);
    CHECK(q->sections[1].items[1].weight == 1);     /* default */
    CHECK(q->sections[2].items[2].bonus && !q->sections[2].items[2].critical);
    CHECK(strlen(q->content_sha256) == 64);
    CHECK(strspn(q->content_sha256, "0123456789abcdef") == 64);
    bm_refdata_destroy(&rd);
    CHECK(rd == NULL);
    bm_refdata_destroy(&rd);   /* safe twice */
}

static void test_missing_file(void)
{
    bm_err_t err = {{0}};
    bm_refdata_t *rd = bm_refdata_read_file("/nonexistent/refdata.json", &err);
    CHECK(rd == NULL);
    CHECK(strstr(err.msg, "could not open \"/nonexistent/refdata.json\"") == err.msg);
}

/* The hash depends on the definition, not on formatting, key order or
 * defaults written out. */
static void test_hash(void)
{
    char a[8192], b[8192], c[8192];
    snprintf(a, sizeof a, "%s", s_doc("UTC", S_BRANCHES, S_SECTIONS));
    snprintf(b, sizeof b, "%s",
             s_doc("UTC", S_BRANCHES,
                   "{\"items\": [{\"max_points\": 1.0, \"weight\": 1, \"critical\": false,"
                   " \"text\": \"Greeted\", \"bonus\": false, \"code\": \"G1\"}],"
                   " \"critical_rule\": \"zero_section\", \"weight\": 1.0,"
                   " \"title\": \"Greeting\", \"code\": \"GREET\"}"));
    snprintf(c, sizeof c, "%s",
             s_doc("UTC", S_BRANCHES,
                   "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": ["
                   "{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 2}]}"));
    bm_err_t err = {{0}};
    bm_refdata_t *ra = bm_refdata_parse(a, strlen(a), &err);
    bm_refdata_t *rb = bm_refdata_parse(b, strlen(b), &err);
    bm_refdata_t *rc = bm_refdata_parse(c, strlen(c), &err);
    CHECK(ra && rb && rc);
    if (ra && rb && rc) {
        CHECK(strcmp(ra->questionnaires[0].content_sha256, rb->questionnaires[0].content_sha256) == 0);
        CHECK(strcmp(ra->questionnaires[0].content_sha256, rc->questionnaires[0].content_sha256) != 0);
    }
    bm_refdata_destroy(&ra);
    bm_refdata_destroy(&rb);
    bm_refdata_destroy(&rc);
}

static void test_errors(void)
{
    /* unknown region */
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"EAST\"}",
                       S_SECTIONS),
                 "branches[0].region: unknown region \"EAST\"");
    /* duplicate code */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES ", {\"code\": \"B002\", \"name\": \"Two\", \"region\": "
                       "\"SOUTH\"}, {\"code\": \"B001\", \"name\": \"Three\", \"region\": \"SOUTH\"}",
                       S_SECTIONS),
                 "branches[2].code: duplicate branch code \"B001\" (also branches[0])");
    /* bad code syntax */
    EXPECT_ERROR_PREFIX(s_doc("UTC", "{\"code\": \"B 01\", \"name\": \"One\", \"region\": \"NORTH\"}",
                              S_SECTIONS),
                        "branches[0].code: \"B 01\" is not a valid code");
    EXPECT_ERROR_PREFIX(s_doc("UTC", "{\"code\": \"B0000000000000000000000000000000001\", "
                              "\"name\": \"One\", \"region\": \"NORTH\"}", S_SECTIONS),
                        "branches[0].code: \"B0000000000000000000000000000000001\" is not a valid code");
    /* missing field */
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"region\": \"NORTH\"}", S_SECTIONS),
                 "branches[0].name: required field is missing");
    /* wrong type */
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"NORTH\", "
                       "\"latitude\": \"42.1\", \"longitude\": 23}", S_SECTIONS),
                 "branches[0].latitude: expected a number, got a string");
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": 7, \"region\": \"NORTH\"}", S_SECTIONS),
                 "branches[0].name: expected a string, got a number");
    /* cap without cap_percent */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"critical_rule\": \"cap\","
                       " \"items\": [{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 1}]}"),
                 "questionnaires[0].sections[0].cap_percent: required field is missing "
                 "(critical_rule is \"cap\")");
    /* cap_percent with another rule */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"cap_percent\": 50,"
                       " \"items\": [{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 1}]}"),
                 "questionnaires[0].sections[0].cap_percent: only allowed with critical_rule \"cap\"");
    /* lat without lon */
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"NORTH\", "
                       "\"latitude\": 42.1}", S_SECTIONS),
                 "branches[0]: latitude and longitude must be given together (longitude is missing)");
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"NORTH\", "
                       "\"latitude\": 91, \"longitude\": 0}", S_SECTIONS),
                 "branches[0].latitude: 91 is out of range -90..90");
    /* time zone syntax (the name itself is checked against the server) */
    EXPECT_ERROR_PREFIX(s_doc("Europe Sofia", S_BRANCHES, S_SECTIONS),
                        "chain.timezone: \"Europe Sofia\" is not a time zone name");
    /* duplicate item code, also across sections */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       S_SECTIONS ", {\"code\": \"NEEDS\", \"title\": \"Needs\", \"items\": ["
                       "{\"code\": \"N1\", \"text\": \"Asked\", \"max_points\": 1},"
                       "{\"code\": \"G1\", \"text\": \"Again\", \"max_points\": 1}]}"),
                 "questionnaires[0].sections[1].items[1].code: duplicate item code \"G1\" "
                 "(also sections[0].items[0])");
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       S_SECTIONS ", {\"code\": \"GREET\", \"title\": \"Again\", \"items\": ["
                       "{\"code\": \"N1\", \"text\": \"Asked\", \"max_points\": 1}]}"),
                 "questionnaires[0].sections[1].code: duplicate section code \"GREET\" "
                 "(also sections[0])");
    /* max_points <= 0 */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": ["
                       "{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 0}]}"),
                 "questionnaires[0].sections[0].items[0].max_points: 0 must be greater than 0");
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": ["
                       "{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": -2}]}"),
                 "questionnaires[0].sections[0].items[0].max_points: -2 must be greater than 0");
    /* critical and bonus at once */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": ["
                       "{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 1,"
                       " \"critical\": true, \"bonus\": true}]}"),
                 "questionnaires[0].sections[0].items[0]: an item cannot be both critical and bonus");
    /* unknown rule, unknown key (a typo must not drop a value) */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"critical_rule\": \"zero\","
                       " \"items\": [{\"code\": \"G1\", \"text\": \"Greeted\", \"max_points\": 1}]}"),
                 "questionnaires[0].sections[0].critical_rule: \"zero\" is not one of "
                 "zero_section, zero_total, cap");
    EXPECT_ERROR(s_doc("UTC", "{\"code\": \"B001\", \"name\": \"One\", \"region\": \"NORTH\", "
                       "\"lattitude\": 42.1}", S_SECTIONS),
                 "branches[0]: unknown key \"lattitude\"");
    /* empty sections and items */
    EXPECT_ERROR(s_doc("UTC", S_BRANCHES,
                       "{\"code\": \"GREET\", \"title\": \"Greeting\", \"items\": []}"),
                 "questionnaires[0].sections[0].items: 0 entries, expected 1..500");
    /* version must be a whole number >= 1 */
    {
        char doc[8192];
        snprintf(doc, sizeof doc, "%s", s_doc("UTC", S_BRANCHES, S_SECTIONS));
        char *v = strstr(doc, "\"version\": 1");
        memcpy(v, "\"version\": 0", 12);
        EXPECT_ERROR(doc, "questionnaires[0].version: 0 must be at least 1");
        memmove(v + 14, v + 12, strlen(v + 12) + 1);
        memcpy(v, "\"version\": 1.5", 14);
        EXPECT_ERROR(doc, "questionnaires[0].version: expected an integer, got a fraction");
    }
    /* a duplicate JSON key is refused by the reader itself */
    EXPECT_ERROR_PREFIX("{\"chain\": {\"code\": \"A\", \"code\": \"B\"}}", "line 1, column");
    EXPECT_ERROR_PREFIX("not json", "line 1, column ");
    EXPECT_ERROR("[1, 2]", "the document must be an object, not an array");
    EXPECT_ERROR("{\"regions\": []}", "chain: required field is missing");
    EXPECT_ERROR("{\"chain\": {\"code\": \"ACME\", \"name\": \"Acme\", \"timezone\": \"UTC\"}, "
                 "\"regions\": [], \"branches\": []}",
                 "regions: 0 entries, expected 1..10000");
}

int main(void)
{
    test_good_file();
    test_missing_file();
    test_hash();
    test_errors();
    if (bm_test_failures) {
        fprintf(stderr, "test_refdata: %d failure%s\n", bm_test_failures, bm_test_failures == 1 ? "" : "s");
        return 1;
    }
    printf("test_refdata: all checks passed\n");
    return 0;
}
