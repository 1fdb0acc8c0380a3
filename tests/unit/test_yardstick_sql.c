/* test_yardstick_sql: the yardstick's branch-level statements (migration
 * 011_yardstick.sql, bm_yardstick_sql) are the metrics catalogue's own
 * (report/metric.c), so the chain figures a scoped login gets are summed
 * from exactly the rows HQ's reports sum.  A metric whose statement
 * changes in metric.c fails here until a new migration replaces
 * bm_yardstick_sql with the new text. */
#include "bm_test.h"     /* first: it sets _XOPEN_SOURCE */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric.h"
#include "migrate.h"

/* The text of the last migration that defines bm_yardstick_sql. */
static const char *s_latest_definition(void)
{
    const char *sql = NULL;
    for (const bm_migration_t *m = bm_migrations; m->name; m++)
        if (strstr(m->sql, "FUNCTION bm_yardstick_sql("))
            sql = m->sql;
    return sql;
}

static void test_same_statements(void)
{
    const char *mig = s_latest_definition();
    CHECK(mig != NULL);
    if (!mig)
        return;
    int n = 0;
    for (const bm_metric_t *m = bm_metrics; m->name; m++, n++) {
        size_t len = strlen(m->name) + strlen(m->sql) + 32;
        char *needle = malloc(len);
        CHECK(needle != NULL);
        if (!needle)
            return;
        snprintf(needle, len, "WHEN '%s' THEN $q$%s$q$", m->name, m->sql);
        if (!strstr(mig, needle))
            fprintf(stderr, "metric %s: its statement in metric.c is not bm_yardstick_sql's\n",
                    m->name);
        CHECK(strstr(mig, needle) != NULL);
        free(needle);
    }
    CHECK(n >= 14);
}

int main(void)
{
    test_same_statements();
    return bm_test_result("test_yardstick_sql");
}
