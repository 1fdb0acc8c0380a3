/* agent_config: branchmark-agent's config map and checks; see agent_config.h.
 * Owns nothing beyond the config struct's strings (bm_config frees them). */
#include "agent_config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bm_wire.h"
#include "parser.h"

#define BM_ENDPOINT_MAX 255
#define BM_PATH_MAX 3000

#define OFF(f) offsetof(bm_agent_config_t, f)
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)

const bm_cfg_entry_t bm_agent_config_map[] = {
    {"agent_id", BM_CFG_STR, NULL, true, OFF(agent_id), 0, 0,
     "name of this agent, 1..64 of [A-Za-z0-9_.-]"},
    {"branch", BM_CFG_STR, NULL, true, OFF(branch), 0, 0,
     "code of the branch this agent serves, as in the reference data"},
    {"collector", BM_CFG_STRLIST, NULL, true, OFF(collector), 0, 0,
     "collector endpoint (tcp://host:port or ipc://path); repeat the key for "
     "failover endpoints, tried in order"},
    {"data_dir", BM_CFG_STR, NULL, true, OFF(data_dir), 0, 0,
     "directory for inbox/, sending/, done/, rejected/, deadletter/, spool/ "
     "and status.json"},
    {"inbox_dir", BM_CFG_STR, NULL, false, OFF(inbox_dir), 0, 0,
     "where store systems drop export files; must be on the same file system "
     "as data_dir (default: <data_dir>/inbox)"},
    {"batch_records", BM_CFG_INT, "500", false, OFF(batch_records), 1,
     BM_MAX_RECORDS_PER_BATCH, "records per batch (1..10000)"},
    {"spool_max_bytes", BM_CFG_SIZE, "1G", false, OFF(spool_max_bytes), 1024 * 1024,
     INT64_MAX, "no new inbox files are taken while the spool is this large"},
    {"segment_bytes", BM_CFG_SIZE, "16M", false, OFF(segment_bytes), 64 * 1024,
     1024LL * 1024 * 1024, "size of one spool segment file (read at start only)"},
    {"send_window", BM_CFG_INT, "16", false, OFF(send_window), 1, 1024,
     "batches sent and not yet acknowledged (1..1024)"},
    {"ack_timeout", BM_CFG_DURATION, "30s", false, OFF(ack_timeout_ms), 100,
     DAY_MS, "no reply within this time (or disconnected this long): fail over "
     "to the next collector and resend"},
    {"heartbeat_interval", BM_CFG_DURATION, "5s", false, OFF(heartbeat_interval_ms),
     100, HOUR_MS, "idle time after which a heartbeat is sent; also the "
     "ZeroMQ heartbeat interval"},
    {"backoff_min", BM_CFG_DURATION, "500ms", false, OFF(backoff_min_ms), 10, HOUR_MS,
     "shortest wait before a retry"},
    {"backoff_max", BM_CFG_DURATION, "60s", false, OFF(backoff_max_ms), 10, DAY_MS,
     "longest wait before a retry (exponential backoff with full jitter)"},
    {"scan_interval", BM_CFG_DURATION, "1s", false, OFF(scan_interval_ms), 10, HOUR_MS,
     "how often the inbox is listed"},
    {"inbox_settle", BM_CFG_DURATION, "2s", false, OFF(inbox_settle_ms), 0, HOUR_MS,
     "a file is taken only when it was last modified at least this long ago "
     "(for writers that do not rename into the inbox)"},
    {"clock_max_age", BM_CFG_DURATION, "9600h", false, OFF(clock_max_age_ms), HOUR_MS,
     100 * 366 * DAY_MS, "records older than this are refused (400 days)"},
    {"clock_max_future", BM_CFG_DURATION, "1h", false, OFF(clock_max_future_ms), 0,
     366 * DAY_MS, "records further in the future than this are refused"},
    {"max_reply_bytes", BM_CFG_SIZE, "8M", false, OFF(max_reply_bytes), 64 * 1024,
     256LL * 1024 * 1024, "largest reply accepted from a collector"},
    {"log_level", BM_CFG_STR, "info", false, OFF(log_level), 0, 0,
     "debug, info, warn or error"},
    {"curve_secret_key_file", BM_CFG_STR, "", false, OFF(curve_secret_key_file), 0, 0,
     "this agent's CURVE secret key (branchmark keygen; mode 0600; its public key must be "
     "enrolled at the collector); empty: plaintext (docs/security.md)"},
    {"collector_public_key", BM_CFG_STR, "", false, OFF(collector_public_key), 0, 0,
     "the collectors' CURVE public key: a Z85 string or a .pub file (required with "
     "curve_secret_key_file)"},
    {"encoding", BM_CFG_STRLIST, NULL, false, OFF(encoding), 0, 0,
     "SOURCE:ENCODING: files whose name starts with SOURCE (receipts, complaints_old, ...) "
     "are in ENCODING (windows-1251, windows-1256, ISO-8859-1, UTF-16LE, ...: iconv names) "
     "instead of UTF-8; without SOURCE: every source that has no entry of its own; repeat "
     "the key per source (docs/formats.md)"},
    {NULL, BM_CFG_STR, NULL, false, 0, 0, 0, NULL},
};

static int s_check_endpoint(const char *ep, bm_err_t *err)
{
    size_t n = strlen(ep);
    if (n == 0 || n > BM_ENDPOINT_MAX)
        return bm_err_set(err, "collector: endpoint \"%s\" must have 1..%d characters",
                          ep, BM_ENDPOINT_MAX);
    for (const char *p = ep; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return bm_err_set(err, "collector: endpoint \"%s\" contains a blank or "
                              "control character", ep);
    const char *rest = NULL;
    if (strncmp(ep, "tcp://", 6) == 0)
        rest = ep + 6;
    else if (strncmp(ep, "ipc://", 6) == 0)
        rest = ep + 6;
    if (!rest)
        return bm_err_set(err, "collector: endpoint \"%s\" must start with tcp:// or ipc://",
                          ep);
    if (*rest == '\0')
        return bm_err_set(err, "collector: endpoint \"%s\" has no address", ep);
    if (ep[0] == 't') {
        const char *colon = strrchr(rest, ':');
        if (!colon || colon == rest || colon[1] == '\0')
            return bm_err_set(err, "collector: endpoint \"%s\" needs host:port", ep);
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
            return bm_err_set(err, "collector: endpoint \"%s\" has a bad port", ep);
    }
    return 0;
}

/* Splits an encoding entry "SOURCE:ENCODING" (or "ENCODING") without
 * changing it: *src_len is 0 without a source. */
static const char *s_encoding_split(const char *entry, size_t *src_len)
{
    const char *colon = strchr(entry, ':');
    *src_len = colon ? (size_t)(colon - entry) : 0;
    return colon ? colon + 1 : entry;
}

static int s_check_encodings(const bm_strlist_t *list, bm_err_t *err)
{
    for (size_t i = 0; i < list->count; i++) {
        const char *e = list->items[i];
        size_t sl;
        const char *enc = s_encoding_split(e, &sl);
        char src[128];
        if (sl >= sizeof src)
            return bm_err_set(err, "encoding: \"%.60s...\": the source is too long", e);
        snprintf(src, sizeof src, "%.*s", (int)sl, e);
        if (strchr(e, ':') && (sl == 0 || !bm_parser_for_source(src)))
            return bm_err_set(err, "encoding: \"%s\": \"%s\" does not start like an inbox file "
                              "name (people_count, receipts, queue, calls, complaints, customers, "
                              "surveys, evaluations)", e, src);
        if (!*enc)
            return bm_err_set(err, "encoding: \"%s\": no encoding after the source", e);
        if (bm_parser_encoding_check(enc, err) < 0)
            return bm_err_prefix(err, "encoding: \"%s\"", e);
        for (size_t j = 0; j < i; j++) {
            size_t ol;
            s_encoding_split(list->items[j], &ol);
            if (ol == sl && strncmp(list->items[j], e, sl) == 0)
                return bm_err_set(err, "encoding: source \"%s\" is given twice", src);
        }
    }
    return 0;
}

const char *bm_agent_config_encoding(const bm_agent_config_t *cfg, const char *file_name)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < cfg->encoding.count; i++) {
        size_t sl;
        const char *enc = s_encoding_split(cfg->encoding.items[i], &sl);
        bool match = sl == 0 || strncmp(file_name, cfg->encoding.items[i], sl) == 0;
        if (match && (!best || sl > best_len)) {
            best = enc;
            best_len = sl;
        }
    }
    return best;
}

int bm_agent_config_check(bm_agent_config_t *cfg, bm_err_t *err)
{
    if (!cfg->agent_id || !bm_code_valid(cfg->agent_id, BM_AGENT_ID_MAX))
        return bm_err_set(err, "agent_id: \"%s\" must be 1..%d of [A-Za-z0-9_.-]",
                          cfg->agent_id ? cfg->agent_id : "", BM_AGENT_ID_MAX);
    if (!cfg->branch || !bm_code_valid(cfg->branch, BM_CODE_MAX))
        return bm_err_set(err, "branch: \"%s\" must be 1..%d of [A-Za-z0-9_.-]",
                          cfg->branch ? cfg->branch : "", BM_CODE_MAX);
    if (cfg->collector.count == 0)
        return bm_err_set(err, "collector: at least one endpoint is required");
    if (cfg->collector.count > 32)
        return bm_err_set(err, "collector: at most 32 endpoints are allowed");
    for (size_t i = 0; i < cfg->collector.count; i++)
        if (s_check_endpoint(cfg->collector.items[i], err) < 0)
            return -1;
    if (!cfg->data_dir || cfg->data_dir[0] == '\0')
        return bm_err_set(err, "data_dir: must not be empty");
    if (strlen(cfg->data_dir) > BM_PATH_MAX)
        return bm_err_set(err, "data_dir: path is longer than %d bytes", BM_PATH_MAX);
    /* Strip trailing slashes so that derived paths read cleanly in logs. */
    for (size_t n = strlen(cfg->data_dir); n > 1 && cfg->data_dir[n - 1] == '/'; n--)
        cfg->data_dir[n - 1] = '\0';
    if (!cfg->inbox_dir || cfg->inbox_dir[0] == '\0') {
        size_t n = strlen(cfg->data_dir) + sizeof "/inbox";
        char *p = malloc(n);
        if (!p)
            return bm_err_set(err, "out of memory");
        snprintf(p, n, "%s/inbox", cfg->data_dir);
        free(cfg->inbox_dir);
        cfg->inbox_dir = p;
    }
    if (strlen(cfg->inbox_dir) > BM_PATH_MAX)
        return bm_err_set(err, "inbox_dir: path is longer than %d bytes", BM_PATH_MAX);
    if (cfg->spool_max_bytes < 2 * cfg->segment_bytes)
        return bm_err_set(err, "spool_max_bytes (%lld) must be at least twice segment_bytes "
                          "(%lld)", (long long)cfg->spool_max_bytes,
                          (long long)cfg->segment_bytes);
    if (cfg->backoff_min_ms > cfg->backoff_max_ms)
        return bm_err_set(err, "backoff_min (%lld ms) must not exceed backoff_max (%lld ms)",
                          (long long)cfg->backoff_min_ms, (long long)cfg->backoff_max_ms);
    bool has_secret = cfg->curve_secret_key_file && *cfg->curve_secret_key_file;
    bool has_server = cfg->collector_public_key && *cfg->collector_public_key;
    if (has_secret != has_server)
        return bm_err_set(err, "curve_secret_key_file and collector_public_key go together: "
                          "set both (CURVE) or neither (plaintext)");
    if (s_check_encodings(&cfg->encoding, err) < 0)
        return -1;
    if (!cfg->log_level || bm_log_level_parse(cfg->log_level, &cfg->log_level_value) < 0)
        return bm_err_set(err, "log_level: \"%s\" is not one of debug, info, warn, error",
                          cfg->log_level ? cfg->log_level : "");
    return 0;
}

int bm_agent_config_load(const char *path, bm_agent_config_t *cfg, bm_err_t *err)
{
    if (bm_config_load(path, bm_agent_config_map, cfg, err) < 0)
        return -1;
    if (bm_agent_config_check(cfg, err) < 0)
        return bm_err_prefix(err, "%s", path);
    return 0;
}

void bm_agent_config_free(bm_agent_config_t *cfg)
{
    bm_config_free(bm_agent_config_map, cfg);
}

void bm_agent_config_print_help(FILE *out)
{
    bm_config_print_help(out, bm_agent_config_map);
}
