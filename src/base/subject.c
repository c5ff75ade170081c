#include "subject.h"

#include <string.h>

/* Space and every control byte (including NUL and DEL) would break the line-based protocol or
 * confuse tokenization, so they are banned everywhere. Bytes >= 0x80 pass: UTF-8 subjects are
 * accepted by nats-server. */
static bool byte_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

/* One pass over the subject, checking each token as its terminating '.' (or the end) is seen.
 * A token "*" or ">" is a wildcard only when it is the whole token; "a*" and "foo>" are plain
 * literal tokens, as in nats-server. */
static bool valid(const char *s, size_t len, bool wildcards)
{
    if (!s || len == 0) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!byte_ok((unsigned char)s[i])) return false;
            continue;
        }
        size_t tlen = i - start;
        if (tlen == 0) return false; /* empty token, or leading/trailing/double '.' */
        if (tlen == 1 && (s[start] == '*' || s[start] == '>')) {
            if (!wildcards) return false;
            if (s[start] == '>' && i != len) return false; /* '>' must be last */
        }
        start = i + 1;
    }
    return true;
}

bool subject_valid(const char *s, size_t len)
{
    return valid(s, len, true);
}

bool subject_valid_literal(const char *s, size_t len)
{
    return valid(s, len, false);
}

bool subject_valid_queue(const char *s, size_t len)
{
    if (!s || len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!byte_ok((unsigned char)s[i])) return false;
    return true;
}

bool subject_valid_channel(const char *s, size_t len)
{
    return valid(s, len, false) && !memchr(s, '/', len);
}

bool subject_valid_name(const char *s, size_t len)
{
    return valid(s, len, false) && !memchr(s, '*', len) && !memchr(s, '>', len);
}
