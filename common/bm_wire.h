/* bm_wire: encoding, decoding and header validation of the wire contract
 * (proto/branchmark.proto), shared by agent, collector, tests and bench.
 *
 * The generated protobuf-c types are used directly (Branchmark__V1__*); this
 * module adds the rules protobuf cannot express: size limits, the protocol
 * version, identifier syntax and the shape of an envelope. */
#ifndef BM_WIRE_H
#define BM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "branchmark.pb-c.h"
#include "bm_err.h"

#define BM_PROTOCOL_VERSION 1
#define BM_STREAM_ID_LEN 32                    /* lower-case hex characters */
#define BM_MAX_FRAME_DEFAULT (8u * 1024 * 1024) /* bytes of one ZeroMQ message */
#define BM_MAX_RECORDS_PER_BATCH 10000
#define BM_SOURCE_ID_MAX 128
#define BM_CODE_MAX 32                         /* branch, outlet, questionnaire codes */
#define BM_AGENT_ID_MAX 64

typedef Branchmark__V1__Envelope bm_envelope_t;
typedef Branchmark__V1__Reply bm_reply_t;
typedef Branchmark__V1__Record bm_record_t;
typedef Branchmark__V1__Batch bm_batch_t;

/* Decodes one frame.  Refuses frames above max_len bytes and anything that is
 * not a well-formed Envelope.  Returns a heap object that the caller frees
 * with bm_envelope_free, or NULL with err ("truncated or malformed envelope
 * (N bytes)", "frame of N bytes exceeds the limit of M"). */
bm_envelope_t *bm_envelope_decode(const void *data, size_t len, size_t max_len,
                                  bm_err_t *err);
void bm_envelope_free(bm_envelope_t **env_p);

/* The largest sequence number: the ledger keeps it in a PostgreSQL bigint. */
#define BM_SEQUENCE_MAX ((uint64_t)INT64_MAX)

/* Where one record of a batch lies inside a received frame. */
typedef struct {
    const uint8_t *data;
    size_t len;
} bm_span_t;

/* Checks that the encoding of an envelope says exactly what protobuf-c's
 * decoder will hand on, which protobuf itself does not guarantee: no text
 * field with a NUL byte (protobuf-c returns C strings, so "X\0a" would be
 * read as "X"), no singular field given twice (it would be merged or
 * replaced: a batch split into two chunks keeps only the last), no two
 * fields of one oneof, no 32-bit field with a larger value (it would be
 * cut), the wire type each field is declared with, no groups.  Unknown
 * fields are allowed (protobuf's forward compatibility).  The records of
 * the batch are not looked into: their places are written to
 * spans[0..cap) and their number to *n_records (which may exceed cap), and
 * bm_record_check_encoding checks each, so one bad record is refused alone.
 * Returns 0, or -1 with err naming the field and the problem
 * ("agent_id: contains a NUL byte (byte 3 of 7) ..."); the collector
 * answers that with ERROR_MALFORMED. */
int bm_envelope_scan(const void *data, size_t len, bm_span_t *spans, size_t cap,
                     size_t *n_records, bm_err_t *err);

/* The same rules for one Record (a span from bm_envelope_scan).  Returns 0,
 * or -1 with err naming the field inside the record
 * ("source_id: contains a NUL byte (byte 2 of 3) ..."). */
int bm_record_check_encoding(const bm_span_t *span, bm_err_t *err);

/* Checks the header rules: protocol version, agent_id and branch_code syntax,
 * stream_id of 32 lower-case hex, sequence >= 1 (at most BM_SEQUENCE_MAX)
 * with a batch body and 0 with a heartbeat, sent_at within the years
 * 0001..9999, body present, at most BM_MAX_RECORDS_PER_BATCH records, each
 * with a kind or an unknown field (an unknown record kind, which the
 * collector refuses record by record).
 * Returns 0, or -1 with err naming the field.  Sets *code (if not NULL) to the
 * ErrorCode the collector should answer with. */
int bm_envelope_check(const bm_envelope_t *env, Branchmark__V1__ErrorCode *code,
                      bm_err_t *err);

/* Encodes any protobuf-c message into a fresh heap buffer of *len bytes,
 * which the caller frees.  Returns NULL only when out of memory. */
uint8_t *bm_message_encode(const ProtobufCMessage *msg, size_t *len);

/* Decodes a Reply (the agent's side).  Same contract as bm_envelope_decode;
 * free with bm_reply_free. */
bm_reply_t *bm_reply_decode(const void *data, size_t len, size_t max_len,
                            bm_err_t *err);
void bm_reply_free(bm_reply_t **reply_p);

/* Identifier syntax shared by refdata, config and wire: 1..max characters of
 * [A-Za-z0-9_.-]. */
bool bm_code_valid(const char *s, size_t max);

/* True when s is a stream id: BM_STREAM_ID_LEN lower-case hex characters. */
bool bm_stream_id_valid(const char *s);

/* True when s is valid UTF-8 (strict: no overlong forms, no surrogates, at
 * most U+10FFFF). */
bool bm_utf8_valid(const char *s);

/* Copies s into out (size >= 8 bytes) as valid UTF-8: every byte that is
 * not part of a valid UTF-8 sequence, and every control character, is
 * written as the four characters \xNN; when out is too small the copy ends
 * at a character boundary with "...".  Returns out.  Replies are built with
 * it, so a client's decoder never meets bytes that are not UTF-8. */
char *bm_utf8_escape(const char *s, char *out, size_t size);

/* Fills out (BM_STREAM_ID_LEN + 1 bytes) with a new random stream id from
 * OpenSSL's RAND_bytes.  Returns 0, or -1 with err. */
int bm_stream_id_new(char *out, bm_err_t *err);

#endif
