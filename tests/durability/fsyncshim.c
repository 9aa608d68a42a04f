/* fsyncshim: a disk that keeps only what was fsync'd (the fault model of a power cut).
 *
 * Loaded with LD_PRELOAD into a process that writes under FSYNCSHIM_DIR, it keeps a "durable
 * copy" of that tree under FSYNCSHIM_SHADOW (a directory outside it, seeded by the test with the
 * tree as it was when the process started):
 *
 *   - fsync(fd) / fdatasync(fd) of a regular file under FSYNCSHIM_DIR copies the file's whole
 *     content, as it is now, into the durable copy (through a temporary file and a rename, so a
 *     kill in the middle leaves the previous durable content). The copy is made before the call
 *     returns: whatever the caller learns after its fsync returned is in the durable copy.
 *   - rename(a, b) under FSYNCSHIM_DIR is durable only once the directory of b is fsync'd
 *     (the pending renames are applied to the durable copy then, in order).
 *   - unlink(p) is applied to the durable copy at once (either outcome is possible after a real
 *     power cut; SQLite deletes a WAL only after its content is synced into the database).
 *   - Nothing else reaches the durable copy: writes never followed by an fsync of their file,
 *     the -shm file SQLite maps into memory, files that were created and never synced. (A new
 *     file is durable from its first fsync, as if its directory entry were synced with it: a
 *     little kinder than a real disk; SQLite syncs the directory of a new WAL itself.)
 *
 * The test then kills the process (SIGKILL) at a random moment and replaces FSYNCSHIM_DIR with
 * the durable copy: the disk as a power cut would have left it, in the worst case where no
 * unsynced byte made it (torn sectors are not modelled; SQLite's WAL checksums cover those).
 *
 * Built by tests/durability/test_power_cut.py with gcc into a temporary directory:
 *   gcc -shared -fPIC -O2 -o fsyncshim.so fsyncshim.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_PENDING 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char watched[PATH_MAX];
static char shadow[PATH_MAX];
static size_t watched_len;
static int ready = -1; /* -1 unknown, 0 off, 1 on */

struct pending { char from[PATH_MAX]; char to[PATH_MAX]; };
static struct pending renames[MAX_PENDING];
static int n_renames;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlink)(const char *);

static void setup(void) {
    if (ready >= 0) return;
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *w = getenv("FSYNCSHIM_DIR"), *s = getenv("FSYNCSHIM_SHADOW");
    if (!w || !s || !realpath(w, watched) || !realpath(s, shadow)) { ready = 0; return; }
    watched_len = strlen(watched);
    ready = 1;
}

/* The durable copy's path of `path` (absolute, resolved), or 0 when it is not watched. */
static int shadow_of(const char *path, char *out) {
    if (strncmp(path, watched, watched_len) != 0) return 0;
    if (path[watched_len] != '/' && path[watched_len] != '\0') return 0;
    return snprintf(out, PATH_MAX, "%s%s", shadow, path + watched_len) < PATH_MAX;
}

/* Resolve `path` (maybe relative to dirfd) to an absolute path without following its last
 * component (it may not exist yet, or be a file about to be renamed). */
static int absolute(int dirfd, const char *path, char *out) {
    char dir[PATH_MAX], base[PATH_MAX], resolved[PATH_MAX];
    if (path[0] == '/') {
        snprintf(dir, sizeof dir, "%s", path);
    } else {
        char start[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(start, sizeof start)) return 0;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, start, sizeof start - 1);
            if (n < 0) return 0;
            start[n] = '\0';
        }
        if (snprintf(dir, sizeof dir, "%s/%s", start, path) >= (int)sizeof dir) return 0;
    }
    char *slash = strrchr(dir, '/');
    snprintf(base, sizeof base, "%s", slash + 1);
    if (slash == dir) slash[1] = '\0'; else *slash = '\0';
    if (!realpath(dir, resolved)) return 0;
    return snprintf(out, PATH_MAX, "%s/%s", strcmp(resolved, "/") ? resolved : "", base)
        < PATH_MAX;
}

static void make_parents(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + strlen(shadow) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(buf, 0700);
        *p = '/';
    }
}

/* Copy the file open as `fd` into the durable copy at `target`. */
static void copy_fd(int fd, const char *target) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.fsyncshim-%ld", target, (long)syscall(SYS_gettid))
        >= (int)sizeof tmp) return;
    make_parents(target);
    int src = -1, dst = -1;
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0) return;
    real[n] = '\0';
    src = open(real, O_RDONLY | O_CLOEXEC); /* its own offset: the caller's stays put */
    if (src < 0) return;
    struct stat st;
    if (fstat(src, &st) == 0 &&
        (dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777)) >= 0) {
        off_t offset = 0;
        int ok = 1;
        while (offset < st.st_size) {
            ssize_t sent = sendfile(dst, src, &offset, (size_t)(st.st_size - offset));
            if (sent <= 0) { ok = 0; break; }
        }
        close(dst);
        if (ok) real_rename(tmp, target); else real_unlink(tmp);
    }
    close(src);
}

static void apply_renames_into(const char *dir) {
    size_t len = strlen(dir);
    int kept = 0;
    for (int i = 0; i < n_renames; i++) {
        struct pending *r = &renames[i];
        const char *slash = strrchr(r->to, '/');
        if ((size_t)(slash - r->to) == len && strncmp(r->to, dir, len) == 0) {
            char from[PATH_MAX], to[PATH_MAX];
            if (shadow_of(r->from, from) && shadow_of(r->to, to)) {
                if (access(from, F_OK) == 0) real_rename(from, to);
                else real_unlink(to); /* a never-synced file renamed over: empty there */
            }
        } else {
            renames[kept++] = *r;
        }
    }
    n_renames = kept;
}

static void synced(int fd) {
    char link[64], path[PATH_MAX], target[PATH_MAX];
    struct stat st;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0 || fstat(fd, &st) != 0) return;
    path[n] = '\0';
    if (!shadow_of(path, target)) return;
    pthread_mutex_lock(&lock);
    if (S_ISREG(st.st_mode)) copy_fd(fd, target);
    else if (S_ISDIR(st.st_mode)) apply_renames_into(path);
    pthread_mutex_unlock(&lock);
}

int fsync(int fd) {
    setup();
    int rc = real_fsync(fd);
    if (rc == 0 && ready == 1) synced(fd);
    return rc;
}

int fdatasync(int fd) {
    setup();
    int rc = real_fdatasync(fd);
    if (rc == 0 && ready == 1) synced(fd);
    return rc;
}

static void renamed(const char *from, const char *to) {
    if (n_renames < MAX_PENDING) {
        snprintf(renames[n_renames].from, PATH_MAX, "%s", from);
        snprintf(renames[n_renames].to, PATH_MAX, "%s", to);
        n_renames++;
    }
}

static int rename_at(int olddir, const char *from, int newdir, const char *to) {
    char a[PATH_MAX], b[PATH_MAX], sa[PATH_MAX], sb[PATH_MAX];
    int watched_rename = ready == 1 && absolute(olddir, from, a) && absolute(newdir, to, b)
        && shadow_of(a, sa) && shadow_of(b, sb);
    if (watched_rename) pthread_mutex_lock(&lock);
    int rc = real_renameat(olddir, from, newdir, to);
    if (watched_rename) {
        if (rc == 0) renamed(a, b);
        pthread_mutex_unlock(&lock);
    }
    return rc;
}

int rename(const char *from, const char *to) {
    setup();
    return rename_at(AT_FDCWD, from, AT_FDCWD, to);
}

int renameat(int olddir, const char *from, int newdir, const char *to) {
    setup();
    return rename_at(olddir, from, newdir, to);
}

int unlink(const char *path) {
    setup();
    char a[PATH_MAX], s[PATH_MAX];
    int watched_unlink = ready == 1 && absolute(AT_FDCWD, path, a) && shadow_of(a, s);
    int rc = real_unlink(path);
    if (rc == 0 && watched_unlink) {
        pthread_mutex_lock(&lock);
        real_unlink(s);
        pthread_mutex_unlock(&lock);
    }
    return rc;
}
