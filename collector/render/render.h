/* render: a report's typed result (report/reports.h) laid out as the
 * tables and notes of render/output.h and written as an aligned text table,
 * CSV or JSON.  The column names, the order of the tables, the notes and
 * every number's decimals are decided here and nowhere else; the figures
 * themselves come from the result unchanged. */
#ifndef BM_RENDER_H
#define BM_RENDER_H

#include <stdio.h>

#include "bm_err.h"
#include "output.h"
#include "reports.h"

/* The result as tables and notes (the caller destroys it), or NULL with
 * err when memory runs out. */
bm_report_t *bm_render_build(const bm_result_t *res, bm_err_t *err);

/* Builds and writes the result in fmt to out.  0, or -1 with err ("could
 * not write the output"). */
int bm_render_result(const bm_result_t *res, bm_format_t fmt, FILE *out, bm_err_t *err);

/* Runs request rq on conn (bm_reports_run) and writes its result in fmt to
 * out: what both front ends do once they hold a request.  A BM_REPORT_*
 * class, with err on failure (out may then hold part of a report). */
int bm_render_report(PGconn *conn, const bm_request_t *rq, bm_format_t fmt, FILE *out,
                     bm_err_t *err);

#endif
