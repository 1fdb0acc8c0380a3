/* agent_status: status.json and branchmark-agent.prom writers and the
 * `status` subcommand; see agent_status.h.  Owns: <data_dir>/status.json,
 * <data_dir>/branchmark-agent.prom and their .tmp files. */
#include "agent_status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bm_prom.h"
#include "bm_time.h"


char *bm_agent_status_json(const bm_agent_status_t *st)
{
    char started[32], updated[32], last_ack[32], last_err[32];
    bm_time_format(st->started_ms, started, sizeof started);
    bm_time_format(st->updated_ms, updated, sizeof updated);
    bm_time_format(st->last_ack_ms, last_ack, sizeof last_ack);
    bm_time_format(st->last_error_ms, last_err, sizeof last_err);

    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "pid", json_integer(st->pid));
    json_object_set_new(o, "running", json_boolean(st->running));
    json_object_set_new(o, "started_at", json_string(started));
    json_object_set_new(o, "updated_at", json_string(updated));
    json_object_set_new(o, "agent_id", json_string(st->agent_id));
    json_object_set_new(o, "branch", json_string(st->branch));
    json_object_set_new(o, "stream_id", json_string(st->stream_id));
    json_object_set_new(o, "state", json_string(st->state));
    json_object_set_new(o, "endpoint", json_string(st->endpoint));
    json_object_set_new(o, "spool_entries", json_integer((json_int_t)st->spool_entries));
    json_object_set_new(o, "spool_bytes", json_integer((json_int_t)st->spool_bytes));
    json_object_set_new(o, "spool_max_bytes", json_integer((json_int_t)st->spool_max_bytes));
    json_object_set_new(o, "spool_full", json_boolean(st->spool_full));
    json_object_set_new(o, "oldest_unsent_age_s", json_integer(st->oldest_unsent_age_s));
    json_object_set_new(o, "last_ack_time", st->last_ack_ms ? json_string(last_ack)
                                                            : json_null());
    json_object_set_new(o, "acked_seq", json_integer((json_int_t)st->acked_seq));
    json_object_set_new(o, "next_seq", json_integer((json_int_t)st->next_seq));
    json_object_set_new(o, "files_pending", json_integer((json_int_t)st->files_pending));
    json_object_set_new(o, "files_done", json_integer((json_int_t)st->files_done));
    json_object_set_new(o, "files_rejected", json_integer((json_int_t)st->files_rejected));
    json_object_set_new(o, "files_waiting", json_integer((json_int_t)st->files_waiting));
    json_object_set_new(o, "files_stuck", json_integer((json_int_t)st->files_stuck));
    json_t *stuck = json_array();
    for (size_t i = 0; stuck && i < st->n_stuck_shown && i < BM_STATUS_STUCK_SHOWN; i++) {
        json_t *f = json_object();
        json_t *n = json_string(st->stuck_name[i]);
        json_object_set_new(f, "name", n ? n : json_string("(not valid UTF-8)"));
        json_object_set_new(f, "reason", json_string(st->stuck_why[i]));
        json_array_append_new(stuck, f);
    }
    json_object_set_new(o, "stuck_files", stuck ? stuck : json_null());
    json_object_set_new(o, "lines_bad", json_integer((json_int_t)st->lines_bad));
    json_object_set_new(o, "records_spooled", json_integer((json_int_t)st->records_spooled));
    json_object_set_new(o, "records_sent", json_integer((json_int_t)st->records_sent));
    json_object_set_new(o, "records_acked", json_integer((json_int_t)st->records_acked));
    json_object_set_new(o, "records_rejected", json_integer((json_int_t)st->records_rejected));
    json_object_set_new(o, "records_deadlettered",
                        json_integer((json_int_t)st->records_deadlettered));
    json_object_set_new(o, "clock_skew_ms", st->clock_skew_known
                                                ? json_integer(st->clock_skew_ms)
                                                : json_null());
    json_t *e = st->last_error[0] ? json_string(st->last_error) : json_null();
    json_object_set_new(o, "last_error", e ? e : json_string("(not valid UTF-8)"));
    json_object_set_new(o, "last_error_time", st->last_error_ms ? json_string(last_err)
                                                                : json_null());
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* Writes text and a final newline (when nl) to data_dir/name through
 * name.tmp and rename.  Returns 0 or -1 with err (no .tmp left behind). */
static int s_write_atomic(const char *data_dir, const char *name, const char *json, bool nl,
                          bm_err_t *err)
{
    char path[4096], tmp[4096 + 8];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return bm_err_set(err, "could not write status file \"%s\": %s", tmp,
                          strerror(errno));
    size_t len = strlen(json), off = 0;
    while (off < len) {
        ssize_t w = write(fd, json + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return bm_err_set(err, "could not write status file \"%s\": %s", tmp,
                              strerror(e));
        }
        off += (size_t)w;
    }
    if (nl) {
        ssize_t w = write(fd, "\n", 1);
        (void)w;
    }
    /* No fsync: the status is advisory and rewritten every second; rename
     * alone keeps readers from seeing a half-written file. */
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return bm_err_set(err, "could not rename \"%s\" to \"%s\": %s", tmp, path,
                          strerror(e));
    }
    return 0;
}

int bm_agent_status_write(const char *data_dir, const char *json, bm_err_t *err)
{
    return s_write_atomic(data_dir, "status.json", json, true, err);
}

int bm_agent_status_write_prom(const char *data_dir, const char *text, bm_err_t *err)
{
    return s_write_atomic(data_dir, BM_STATUS_PROM_FILE, text, false, err);
}

static void s_prom_one(bm_prom_t *p, const char *name, bm_prom_type_t type, const char *help,
                       double v)
{
    bm_prom_family(p, name, type, help);
    bm_prom_sample(p, name, v, NULL);
}

char *bm_agent_status_prom(const bm_agent_status_t *st, int64_t now_ms)
{
    static const char *const states[] = {"connecting", "connected", "disconnected", "refused"};
    bm_prom_t *p = bm_prom_new(64 * 1024);
    if (!p)
        return NULL;
    bm_prom_family(p, "branchmark_agent_info", BM_PROM_GAUGE,
                   "the agent's identity (value 1)");
    bm_prom_sample(p, "branchmark_agent_info", 1, "agent_id", st->agent_id, "branch",
                   st->branch, "stream_id", st->stream_id, NULL);
    s_prom_one(p, "branchmark_agent_running", BM_PROM_GAUGE, "1 while the agent runs, 0 "
               "once it has stopped", st->running ? 1 : 0);
    bm_prom_family(p, "branchmark_agent_connection_state", BM_PROM_GAUGE,
                   "1 for the sender's current state, 0 for the others");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        bm_prom_sample(p, "branchmark_agent_connection_state",
                       strcmp(st->state, states[i]) == 0 ? 1 : 0, "state", states[i], NULL);
    s_prom_one(p, "branchmark_agent_spool_entries", BM_PROM_GAUGE,
               "spool depth: batches not yet acknowledged", (double)st->spool_entries);
    s_prom_one(p, "branchmark_agent_spool_bytes", BM_PROM_GAUGE, "bytes in the spool",
               (double)st->spool_bytes);
    s_prom_one(p, "branchmark_agent_spool_max_bytes", BM_PROM_GAUGE, "spool_max_bytes",
               (double)st->spool_max_bytes);
    s_prom_one(p, "branchmark_agent_spool_full", BM_PROM_GAUGE, "1 while the spool limit "
               "holds new inbox files back", st->spool_full ? 1 : 0);
    s_prom_one(p, "branchmark_agent_oldest_unsent_age_seconds", BM_PROM_GAUGE, "age of the "
               "oldest unacknowledged batch (0: nothing waits)",
               (double)st->oldest_unsent_age_s);
    /* No ack since start: the age since start, so "no ack for X" holds. */
    int64_t since = st->last_ack_ms ? st->last_ack_ms : st->started_ms;
    s_prom_one(p, "branchmark_agent_last_ack_age_seconds", BM_PROM_GAUGE, "seconds since "
               "the last batch acknowledgement (since start when none yet)",
               now_ms > since ? (double)(now_ms - since) / 1000.0 : 0);
    s_prom_one(p, "branchmark_agent_last_ack_timestamp_seconds", BM_PROM_GAUGE, "time of "
               "the last batch acknowledgement (0: none since start)",
               (double)st->last_ack_ms / 1000.0);
    s_prom_one(p, "branchmark_agent_files_stuck", BM_PROM_GAUGE, "inbox files that can never "
               "be taken as they are (status names them)", (double)st->files_stuck);
    s_prom_one(p, "branchmark_agent_files_waiting", BM_PROM_GAUGE, "inbox files not settled "
               "or not yet taken", (double)st->files_waiting);
    s_prom_one(p, "branchmark_agent_files_pending", BM_PROM_GAUGE, "files in sending/, "
               "waiting for acknowledgements", (double)st->files_pending);
    bm_prom_family(p, "branchmark_agent_files_total", BM_PROM_COUNTER,
                   "files finished since start, by where they went");
    bm_prom_sample(p, "branchmark_agent_files_total", (double)st->files_done, "result", "done",
                   NULL);
    bm_prom_sample(p, "branchmark_agent_files_total", (double)st->files_rejected, "result",
                   "rejected", NULL);
    bm_prom_family(p, "branchmark_agent_records_total", BM_PROM_COUNTER,
                   "records since start: spooled, sent (first sends), acknowledged, "
                   "refused by the collector, dead-lettered");
    const struct {
        const char *what;
        uint64_t v;
    } rec[] = {{"spooled", st->records_spooled}, {"sent", st->records_sent},
               {"acknowledged", st->records_acked}, {"refused", st->records_rejected},
               {"deadlettered", st->records_deadlettered}};
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++)
        bm_prom_sample(p, "branchmark_agent_records_total", (double)rec[i].v, "result",
                       rec[i].what, NULL);
    s_prom_one(p, "branchmark_agent_bad_lines_total", BM_PROM_COUNTER, "inbox lines that "
               "failed validation since start", (double)st->lines_bad);
    if (st->clock_skew_known)
        s_prom_one(p, "branchmark_agent_clock_skew_seconds", BM_PROM_GAUGE, "local clock "
                   "minus the collector's", (double)st->clock_skew_ms / 1000.0);
    s_prom_one(p, "branchmark_agent_start_time_seconds", BM_PROM_GAUGE, "when the agent "
               "started, seconds since the Unix epoch", (double)st->started_ms / 1000.0);
    char *text = bm_prom_take(p, NULL, NULL);
    bm_prom_destroy(&p);
    return text;
}

/* The pid is alive and (where /proc tells) still a branchmark agent, so that
 * a reused pid is not taken for the agent. */
static bool s_pid_alive(int pid)
{
    if (pid <= 0)
        return false;
    if (kill(pid, 0) < 0 && errno != EPERM)
        return false;
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return true;
    bool ok = true;
    if (fgets(comm, sizeof comm, fp))
        ok = strncmp(comm, "branchmark-agen", 15) == 0;
    fclose(fp);
    return ok;
}

static const char *s_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long s_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void s_human_bytes(long long n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%lld B", n);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

int bm_agent_status_show(const char *data_dir, bool as_json, FILE *out, FILE *errout)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/status.json", data_dir);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o) {
        if (access(path, F_OK) < 0) {
            fprintf(out, "not running (no status file \"%s\")\n", path);
            return BM_STATUS_EXIT_NOT_RUNNING;
        }
        fprintf(errout, "cannot read status file \"%s\": line %d: %s\n", path,
                jerr.line, jerr.text);
        return BM_STATUS_EXIT_USAGE;
    }
    if (!json_is_object(o)) {
        fprintf(errout, "cannot read status file \"%s\": not a JSON object\n", path);
        json_decref(o);
        return BM_STATUS_EXIT_USAGE;
    }
    int pid = (int)s_int(o, "pid");
    bool alive = json_is_true(json_object_get(o, "running")) && s_pid_alive(pid);
    bool refused = strcmp(s_str(o, "state"), "refused") == 0;
    bool full = json_is_true(json_object_get(o, "spool_full"));
    long long stuck = s_int(o, "files_stuck");
    int rc = !alive ? BM_STATUS_EXIT_NOT_RUNNING
             : (refused || full) ? BM_STATUS_EXIT_DEGRADED
             : stuck > 0 ? BM_STATUS_EXIT_STUCK : BM_STATUS_EXIT_OK;

    if (as_json) {
        json_object_set_new(o, "alive", json_boolean(alive));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(o);
        return rc;
    }

    char b1[32], b2[32];
    if (alive)
        fprintf(out, "agent %s (branch %s): running, pid %d, since %s\n",
                s_str(o, "agent_id"), s_str(o, "branch"), pid, s_str(o, "started_at"));
    else
        fprintf(out, "agent %s (branch %s): not running (last status at %s)\n",
                s_str(o, "agent_id"), s_str(o, "branch"), s_str(o, "updated_at"));
    fprintf(out, "  %-16s %s%s%s\n", "connection", s_str(o, "state"),
            s_str(o, "endpoint")[0] ? " " : "", s_str(o, "endpoint"));
    s_human_bytes(s_int(o, "spool_bytes"), b1, sizeof b1);
    s_human_bytes(s_int(o, "spool_max_bytes"), b2, sizeof b2);
    fprintf(out, "  %-16s %lld batches unacknowledged, %s of %s%s\n", "spool",
            s_int(o, "spool_entries"), b1, b2,
            full ? " (FULL: inbox intake paused)" : "");
    fprintf(out, "  %-16s %lld s\n", "oldest unsent", s_int(o, "oldest_unsent_age_s"));
    const char *la = s_str(o, "last_ack_time");
    fprintf(out, "  %-16s %s (acked up to sequence %lld, next %lld)\n", "last ack",
            la[0] ? la : "none since start", s_int(o, "acked_seq"), s_int(o, "next_seq"));
    fprintf(out, "  %-16s %lld pending, %lld done, %lld rejected since start; %lld waiting "
            "in the inbox\n", "files", s_int(o, "files_pending"), s_int(o, "files_done"),
            s_int(o, "files_rejected"), s_int(o, "files_waiting"));
    if (stuck > 0) {
        fprintf(out, "  %-16s %lld in the inbox cannot be taken (fix or remove them):\n",
                "STUCK FILES", stuck);
        json_t *list = json_object_get(o, "stuck_files");
        size_t i;
        json_t *f;
        json_array_foreach(list, i, f)
            fprintf(out, "    %s: %s\n", s_str(f, "name"), s_str(f, "reason"));
        if ((long long)json_array_size(list) < stuck)
            fprintf(out, "    ... and %lld more\n", stuck - (long long)json_array_size(list));
    }
    fprintf(out, "  %-16s %lld spooled, %lld sent, %lld acknowledged, %lld refused, "
            "%lld dead-lettered, %lld bad lines\n", "records",
            s_int(o, "records_spooled"), s_int(o, "records_sent"),
            s_int(o, "records_acked"), s_int(o, "records_rejected"),
            s_int(o, "records_deadlettered"), s_int(o, "lines_bad"));
    json_t *skew = json_object_get(o, "clock_skew_ms");
    if (json_is_integer(skew))
        fprintf(out, "  %-16s %+lld ms (local - collector)\n", "clock skew",
                (long long)json_integer_value(skew));
    else
        fprintf(out, "  %-16s unknown\n", "clock skew");
    const char *le = s_str(o, "last_error");
    if (le[0])
        fprintf(out, "  %-16s %s (at %s)\n", "last error", le, s_str(o, "last_error_time"));
    else
        fprintf(out, "  %-16s none\n", "last error");
    fprintf(out, "  %-16s %s\n", "status written", s_str(o, "updated_at"));
    json_decref(o);
    return rc;
}
