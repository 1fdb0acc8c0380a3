/* bm_crc32c: CRC-32C (Castagnoli), the checksum of spool entries and state
 * files.  It detects torn and corrupted writes; it is not a defence against
 * an attacker (OpenSSL's SHA-256 is used where one is needed). */
#ifndef BM_CRC32C_H
#define BM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (start with 0) over len bytes. */
uint32_t bm_crc32c(uint32_t crc, const void *data, size_t len);

#endif
