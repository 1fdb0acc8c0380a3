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

/* Checks the header rules: protocol version, agent_id and branch_code syntax,
 * stream_id of 32 lower-case hex, sequence >= 1 with a batch body and 0 with a
 * heartbeat, body present, at most BM_MAX_RECORDS_PER_BATCH records.
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

/* Fills out (BM_STREAM_ID_LEN + 1 bytes) with a new random stream id from
 * OpenSSL's RAND_bytes.  Returns 0, or -1 with err. */
int bm_stream_id_new(char *out, bm_err_t *err);

#endif
