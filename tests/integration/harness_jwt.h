/* harness_jwt: NATS decentralised-auth fixtures made in-process, for tests of `--nats_creds`
 * against a nats-server in operator (JWT) mode, where Debian ships no nsc to make them.
 *
 * What is made follows the public formats of nats-io/nkeys and nats-io/jwt v2:
 * - an nkey is an Ed25519 key (OpenSSL); its public key is base32 (RFC 4648, no padding) of a
 *   prefix byte (operator 14<<3 'O', account 0 'A', user 20<<3 'U'), the 32-byte key and a
 *   CRC16 (XMODEM, little-endian); its seed is the same over two bytes (18<<3 'S' and the
 *   type) and the 32-byte private seed;
 * - a JWT is base64url (no padding) of {"typ":"JWT","alg":"ed25519-nkey"}, a '.', base64url of
 *   the claims, a '.', and base64url of the issuer's Ed25519 signature over the two first parts.
 *   Claims: jti (base32 of SHA-512/256 of the other standard claims), iat, iss, name, sub and
 *   "nats" {type, version 2, and the limits, all unlimited (-1): left out, nats-server reads
 *   them as zero and refuses the account's connections, or the user's subscriptions and
 *   messages}.
 * Everything CHECKs (a fixture that cannot be made is a failed test). */
#ifndef STANZA_HARNESS_JWT_H
#define STANZA_HARNESS_JWT_H
#include <openssl/evp.h>

#define HNKEY_PUB_LEN 56  /* base32 of 1 + 32 + 2 bytes */
#define HNKEY_SEED_LEN 58 /* base32 of 2 + 32 + 2 bytes */

struct hnkey {
    EVP_PKEY *pkey;
    char type; /* 'O', 'A' or 'U' */
    char pub[HNKEY_PUB_LEN + 1];
    char seed[HNKEY_SEED_LEN + 1];
};

/* A fresh key pair of the given type ('O' operator, 'A' account, 'U' user). */
void hnkey_make(struct hnkey *k, char type);
void hnkey_free(struct hnkey *k);

/* A JWT with the claims of subject's type (operator, account or user), named name, issued and
 * signed by issuer (the operator itself for an operator JWT; the operator for an account; the
 * account for a user). name is a short plain word (no quote or backslash). malloc'ed. */
char *hjwt_make(const struct hnkey *issuer, const struct hnkey *subject, const char *name);

/* Writes a user credentials file (the layout nsc writes and libnats reads): the user JWT between
 * "-----BEGIN NATS USER JWT-----" and "------END NATS USER JWT------", then the user's seed
 * between "-----BEGIN USER NKEY SEED-----" and "------END USER NKEY SEED------". */
void hjwt_write_creds(const char *path, const char *user_jwt, const struct hnkey *user);

#endif
