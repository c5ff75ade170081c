/* err: see err.h. */
#include "err.h"

#include <string.h>

const char *stz_strerror(int err)
{
    switch (err) {
    case STZ_OK:
        return "success";
#define STZ_ERR_CASE(name, value, msg)                                                             \
    case STZ_##name:                                                                               \
        return msg;
        STZ_ERRORS(STZ_ERR_CASE)
#undef STZ_ERR_CASE
    default:
        break;
    }
    /* -errno from a system call we did not name: the C library knows it. */
    if (err < 0 && err > -4000) return strerror(-err);
    return "unknown error";
}
