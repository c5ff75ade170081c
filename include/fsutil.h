/* fsutil: the file system chores several modules share (the store's directory and its state
 * and snapshot files, the Raft log directory's node ID). Both return 0 or an errno value. */
#ifndef STANZA_FSUTIL_H
#define STANZA_FSUTIL_H
#include <stddef.h>

/* mkdir -p: the directory may be several levels deep and not exist yet. */
int fs_mkdirs(const char *path);
/* Creates or truncates path, writes len bytes of data, and fsyncs it before closing: when it
 * returns 0 the content is on disk. On failure the file may hold part of it. */
int fs_write_file(const char *path, const void *data, size_t len);

#endif
