/* Filesystem helpers that are safe against partial writes and symlink escapes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename over path, fsync of the directory. After a crash path holds
 * either the old or the new content, never a mix. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The same, with a choice: without FS_WRITE_DURABLE the rename is still
 * atomic (a reader or a kill -9 sees the old or the new file, never a mix)
 * but nothing is fsync'ed, for state that need not outlive a reboot (e.g.
 * under /run) and must be cheap to write. */
#define FS_WRITE_DURABLE 1
int fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode, int flags);

/* write(2) until all of data is written (EINTR retried); -errno. */
int fs_write_all(int fd, const void *data, size_t len);
/* Copies what is left of in to out, by copy_file_range where the kernel
 * can, else by read and write. 0 or -errno. */
int fs_copy_fd(int in, int out);

/* Reads a whole file (at most max bytes, else -EFBIG). The buffer is NUL
 * terminated; ret_len may be NULL. */
int fs_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);

/* mkdir -p; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode);

/* Marks path as the top of separate directory trees (the ext4 "T"
 * attribute, FS_TOPDIR_FL): its subdirectories are spread over the file
 * system's block groups instead of packed into its own, so each tree's
 * files are allocated apart from the others'. Best effort: nothing on
 * file systems without the flag. */
void fs_mark_topdir(const char *path);

/* rm -rf that never follows symlinks; a missing path is success. */
int fs_rm_rf(const char *path);
/* name under dfd, whatever it is, a directory with all it holds; never
 * follows a symlink. 0 or -errno. */
int fs_rm_rf_at(int dfd, const char *name);

/* fsync of the directory that holds path. */
int fs_fsync_parent(const char *path);

/* Opens path resolved inside the directory rootfd as if rootfd were "/":
 * absolute symlinks and ".." never leave it. Uses openat2(RESOLVE_IN_ROOT)
 * and falls back to a component-by-component walk where the kernel lacks
 * openat2. flags/mode as for openat(); O_CLOEXEC is always added. */
int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode);

/* mkdir -p of path inside rootfd (resolution as above). On success returns
 * an O_PATH|O_DIRECTORY fd of the final directory. */
int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode);

/* Ensures a regular file (or whatever already exists) at path inside rootfd,
 * creating missing parent directories; returns an O_PATH fd of it. */
int fs_mkfile_in_root(int rootfd, const char *path, mode_t mode);

/* Tests only: force the fallback walk instead of openat2. */
void fs_force_openat2_fallback(bool on);

/* "/proc/self/fd/<fd>" into buf (at least 32 bytes). */
char *fs_fd_path(int fd, char *buf, size_t len);
