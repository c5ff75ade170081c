/* harness_jwt: see harness_jwt.h. */
#include "harness_jwt.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "test.h"

#define PREFIX_SEED (18 << 3)
#define JWT_HEADER "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}"

/* CRC-16/XMODEM (polynomial 0x1021, initial value 0), bitwise: nkeys' table is the same CRC. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* RFC 4648 base32, no padding; out holds (n * 8 + 4) / 5 + 1 bytes. */
static void base32(const uint8_t *p, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = abc[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out[o++] = abc[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

/* base64url, no padding (RFC 4648 section 5), malloc'ed. */
static char *base64url(const uint8_t *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    CHECK(out != NULL);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static uint8_t prefix_byte(char type)
{
    switch (type) {
    case 'O':
        return 14 << 3;
    case 'A':
        return 0;
    case 'U':
        return 20 << 3;
    }
    CHECK(!"nkey type is O, A or U");
    return 0;
}

/* prefix bytes + 32-byte key + CRC16 (little-endian), base32-encoded into out. */
static void encode_key(const uint8_t *prefix, size_t plen, const uint8_t key[32], char *out)
{
    uint8_t raw[2 + 32 + 2];
    memcpy(raw, prefix, plen);
    memcpy(raw + plen, key, 32);
    uint16_t crc = crc16(raw, plen + 32);
    raw[plen + 32] = (uint8_t)(crc & 0xff);
    raw[plen + 33] = (uint8_t)(crc >> 8);
    base32(raw, plen + 34, out);
}

void hnkey_make(struct hnkey *k, char type)
{
    memset(k, 0, sizeof *k);
    k->type = type;
    uint8_t pfx = prefix_byte(type);
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    CHECK(k->pkey != NULL);
    uint8_t pub[32], priv[32];
    size_t n = sizeof pub;
    CHECK(EVP_PKEY_get_raw_public_key(k->pkey, pub, &n) == 1 && n == 32);
    n = sizeof priv;
    CHECK(EVP_PKEY_get_raw_private_key(k->pkey, priv, &n) == 1 && n == 32);
    encode_key(&pfx, 1, pub, k->pub);
    /* The seed's two lead bytes spread 'S' and the type over the first two base32 characters. */
    const uint8_t seed_pfx[2] = {(uint8_t)(PREFIX_SEED | pfx >> 5), (uint8_t)((pfx & 31) << 3)};
    encode_key(seed_pfx, 2, priv, k->seed);
    CHECK(strlen(k->pub) == HNKEY_PUB_LEN && strlen(k->seed) == HNKEY_SEED_LEN);
}

void hnkey_free(struct hnkey *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

/* The "nats" claims of each type; unlimited everywhere (see harness_jwt.h). */
static const char *nats_claims(char type)
{
    switch (type) {
    case 'O':
        return "{\"type\":\"operator\",\"version\":2}";
    case 'A':
        return "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,"
               "\"wildcards\":true,\"conn\":-1,\"leaf\":-1},\"default_permissions\":{\"pub\":{},"
               "\"sub\":{}},\"type\":\"account\",\"version\":2}";
    default:
        return "{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,\"type\":\"user\","
               "\"version\":2}";
    }
}

/* jti: base32 of SHA-512/256 over the standard claims without jti, in nats-io/jwt's order. */
static void claims_id(const char *std_claims, char out[53])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    CHECK(EVP_Digest(std_claims, strlen(std_claims), md, &mdlen, EVP_sha512_256(), NULL) == 1);
    CHECK(mdlen == 32);
    base32(md, 32, out);
}

static char *sign_b64(const struct hnkey *issuer, const char *tbs)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(ctx != NULL);
    uint8_t sig[64];
    size_t siglen = sizeof sig;
    CHECK(EVP_DigestSignInit(ctx, NULL, NULL, NULL, issuer->pkey) == 1);
    CHECK(EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)tbs, strlen(tbs)) == 1);
    CHECK(siglen == 64);
    EVP_MD_CTX_free(ctx);
    return base64url(sig, siglen);
}

char *hjwt_make(const struct hnkey *issuer, const struct hnkey *subject, const char *name)
{
    char std[512], jti[53], claims[2048];
    CHECK(strlen(name) < 64 && !strpbrk(name, "\"\\")); /* goes into the JSON as is */
    int64_t iat = (int64_t)time(NULL);
    snprintf(std, sizeof std, "{\"iat\":%" PRId64 ",\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\"}",
             iat, issuer->pub, name, subject->pub);
    claims_id(std, jti);
    int n = snprintf(claims, sizeof claims,
                     "{\"jti\":\"%s\",\"iat\":%" PRId64
                     ",\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\",\"nats\":%s}",
                     jti, iat, issuer->pub, name, subject->pub, nats_claims(subject->type));
    CHECK(n > 0 && (size_t)n < sizeof claims);
    char *h = base64url((const uint8_t *)JWT_HEADER, strlen(JWT_HEADER));
    char *c = base64url((const uint8_t *)claims, (size_t)n);
    size_t tbs_len = strlen(h) + 1 + strlen(c);
    char *jwt = malloc(tbs_len + 1 + 90);
    CHECK(jwt != NULL);
    snprintf(jwt, tbs_len + 1, "%s.%s", h, c);
    char *sig = sign_b64(issuer, jwt);
    CHECK(strlen(sig) < 90);
    jwt[tbs_len] = '.';
    strcpy(jwt + tbs_len + 1, sig);
    free(sig);
    free(c);
    free(h);
    return jwt;
}

void hjwt_write_creds(const char *path, const char *user_jwt, const struct hnkey *user)
{
    CHECK(user->type == 'U');
    size_t len = strlen(user_jwt) + 512;
    char *text = malloc(len);
    CHECK(text != NULL);
    snprintf(text, len,
             "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
             "************************* IMPORTANT *************************\n"
             "NKEY Seed printed below can be used to sign and prove identity.\n"
             "NKEYs are sensitive and should be treated as secrets.\n\n"
             "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
             "*************************************************************\n",
             user_jwt, user->seed);
    CHECK(hfile_write(path, text) == 0);
    free(text);
}
