/* bm_crc32c: table-driven CRC-32C; see bm_crc32c.h. */
#include "bm_crc32c.h"

#include <pthread.h>

static uint32_t s_table[256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_table[i] = c;
    }
}

uint32_t bm_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&s_once, s_init);
    const unsigned char *p = data;
    crc = ~crc;
    while (len--)
        crc = s_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
