/*
 * vfs_shim.c — liblcfault-vfs.so, an SQLite VFS that makes the audit store's
 * writes fail on demand, loaded into linecertd with LD_PRELOAD (SQLite is
 * linked dynamically).  The fault suite (tests/fault/README.md) uses it to
 * check the station's first invariant under I/O errors the way SQLite tests
 * itself: fail the N-th write for every N over an issuance, and a disk that
 * fills up and later gets space back.
 *
 * Its constructor wraps the default VFS (sqlite3_vfs_find(NULL)) and
 * registers the wrapper as the new default, so the daemon's sqlite3_open_v2
 * uses it without knowing.  Only xWrite, xSync and xTruncate on the audit
 * database and its -wal and -journal files are counted and may fail; every
 * other file and every other call goes straight to the real VFS.
 *
 * Environment (read once, at load):
 *   LC_FAULT_VFS_DB    the audit database path; without it the shim does nothing
 *   LC_FAULT_VFS_CTL   control file "N MODE": fail the N-th counted call made
 *                      after the file was (re)written, once; MODE is eio
 *                      (SQLITE_IOERR_WRITE/FSYNC/TRUNCATE) or enospc
 *                      (SQLITE_FULL; SQLITE_IOERR_FSYNC for xSync, as os_unix.c
 *                      reports an fsync error).  N = 0: count only.  The file
 *                      is looked at (stat) on every counted call.
 *   LC_FAULT_VFS_FULL  while this file exists the disk is "full": every
 *                      counted xWrite and xTruncate fails with SQLITE_FULL.
 *   LC_FAULT_VFS_LOG   appends one line per counted call:
 *                      "N OP FILE RESULT" (RESULT ok, eio, enospc or full),
 *                      N counting from the last (re)arming.
 *
 * LD_PRELOAD is removed from the environment once the shim is loaded: the
 * signer and the jig programs the daemon starts do not get it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum file_kind { F_DB, F_WAL, F_JOURNAL };
static const char *const KIND_NAME[] = {"db", "wal", "journal"};

enum mode { M_COUNT, M_EIO, M_ENOSPC };

/* A counted file: our header, then the real VFS's file object. */
struct shim_file {
    sqlite3_file base;
    enum file_kind kind;
    sqlite3_file *real; /* points just past this struct */
};

static struct {
    sqlite3_vfs vfs; /* the wrapper registered as default */
    sqlite3_vfs *real;
    char names[3][PATH_MAX + 16]; /* db, db-wal, db-journal as SQLite names them */
    char alt[3][PATH_MAX + 16];   /* the same through realpath() of the folder */
    const char *ctl, *full;
    int log_fd;
    pthread_mutex_t mu; /* guards everything below */
    struct stat ctl_st; /* control file as last read (st_ino 0: none) */
    unsigned long count, target;
    enum mode mode;
    int fired;
} G = {.log_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void log_call(unsigned long n, const char *op, enum file_kind k, const char *result)
{
    char line[128];
    int len;

    if (G.log_fd < 0)
        return;
    len = snprintf(line, sizeof line, "%lu %s %s %s\n", n, op, KIND_NAME[k], result);
    if (len > 0 && write(G.log_fd, line, (size_t)len) < 0)
        G.log_fd = -1; /* the log is a convenience: never fail the store because of it */
}

/* Re-reads the control file when it changed (new inode, size or mtime).  Under G.mu. */
static void reread_ctl(void)
{
    struct stat st;
    char buf[64] = "", mode[16] = "";
    unsigned long n = 0;
    FILE *f;

    if (G.ctl == NULL)
        return;
    if (stat(G.ctl, &st) != 0) {
        if (G.ctl_st.st_ino != 0) { /* removed: disarmed */
            memset(&G.ctl_st, 0, sizeof G.ctl_st);
            G.target = 0;
            G.mode = M_COUNT;
        }
        return;
    }
    if (st.st_ino == G.ctl_st.st_ino && st.st_size == G.ctl_st.st_size &&
        st.st_mtim.tv_sec == G.ctl_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == G.ctl_st.st_mtim.tv_nsec)
        return;
    G.ctl_st = st;
    f = fopen(G.ctl, "re");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL)
            buf[0] = '\0';
        fclose(f);
    }
    if (sscanf(buf, "%lu %15s", &n, mode) < 1)
        n = 0;
    G.count = 0;
    G.target = n;
    G.fired = 0;
    G.mode = strcmp(mode, "enospc") == 0 ? M_ENOSPC : n > 0 ? M_EIO : M_COUNT;
}

/*
 * Counts one call and decides its fate: SQLITE_OK to do it, or the error to
 * return instead.  full_rc is the error while the disk is full (0: the call
 * is not affected by a full disk).
 */
static int decide(const char *op, enum file_kind k, int eio_rc, int enospc_rc, int full_rc)
{
    int rc = SQLITE_OK;
    const char *result = "ok";

    pthread_mutex_lock(&G.mu);
    reread_ctl();
    G.count++;
    if (full_rc != 0 && G.full != NULL && access(G.full, F_OK) == 0) {
        rc = full_rc;
        result = "full";
    } else if (G.target != 0 && !G.fired && G.count == G.target) {
        G.fired = 1;
        rc = G.mode == M_ENOSPC ? enospc_rc : eio_rc;
        result = G.mode == M_ENOSPC ? "enospc" : "eio";
    }
    log_call(G.count, op, k, result);
    pthread_mutex_unlock(&G.mu);
    return rc;
}

/* ---- the wrapped file ---------------------------------------------------- */

#define REAL(f) (((struct shim_file *)(f))->real)

static int x_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int x_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int x_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    int rc = decide("xWrite", ((struct shim_file *)f)->kind, SQLITE_IOERR_WRITE, SQLITE_FULL,
                    SQLITE_FULL);

    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = decide("xTruncate", ((struct shim_file *)f)->kind, SQLITE_IOERR_TRUNCATE, SQLITE_FULL,
                    SQLITE_FULL);

    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int x_sync(sqlite3_file *f, int flags)
{
    int rc =
        decide("xSync", ((struct shim_file *)f)->kind, SQLITE_IOERR_FSYNC, SQLITE_IOERR_FSYNC, 0);

    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int x_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int x_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int x_check_reserved_lock(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int x_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int x_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int x_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int x_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

static int x_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int x_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, out);
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods IO_METHODS = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

/* ---- the wrapper VFS ------------------------------------------------------ */

static int counted_kind(const char *name)
{
    for (int k = 0; name != NULL && k < 3; k++)
        if (strcmp(name, G.names[k]) == 0 || (G.alt[k][0] != '\0' && strcmp(name, G.alt[k]) == 0))
            return k;
    return -1;
}

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    struct shim_file *sf = (struct shim_file *)f;
    int kind = counted_kind(name), rc;

    (void)vfs;
    /* Not ours to count: the real file fills our space, uncounted. */
    if (kind < 0)
        return G.real->xOpen(G.real, name, f, flags, out);
    memset(sf, 0, sizeof *sf);
    sf->kind = (enum file_kind)kind;
    sf->real = (sqlite3_file *)(sf + 1);
    rc = G.real->xOpen(G.real, name, sf->real, flags, out);
    if (sf->real->pMethods == NULL) {
        sf->base.pMethods = NULL; /* open failed: SQLite will not call xClose */
        return rc;
    }
    if (sf->real->pMethods->iVersion < 3) {
        /* Cannot wrap a v1/v2 file with v3 methods: give SQLite the real one, uncounted. */
        sf->real->pMethods->xClose(sf->real);
        return G.real->xOpen(G.real, name, f, flags, out);
    }
    sf->base.pMethods = &IO_METHODS;
    return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return G.real->xDelete(G.real, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return G.real->xAccess(G.real, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return G.real->xFullPathname(G.real, name, n, out);
}

static void *v_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return G.real->xDlOpen(G.real, name);
}

static void v_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    G.real->xDlError(G.real, n, msg);
}

static void (*v_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return G.real->xDlSym(G.real, h, sym);
}

static void v_dl_close(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    G.real->xDlClose(G.real, h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.real->xRandomness(G.real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return G.real->xSleep(G.real, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return G.real->xCurrentTime(G.real, out);
}

static int v_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.real->xGetLastError(G.real, n, out);
}

static int v_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return G.real->xCurrentTimeInt64(G.real, out);
}

/* The three names SQLite gives the store's files, plain and through realpath() of the folder. */
static void set_names(const char *db)
{
    static const char *const SUFFIX[] = {"", "-wal", "-journal"};
    char folder[PATH_MAX], resolved[PATH_MAX];
    const char *slash = strrchr(db, '/');

    for (int k = 0; k < 3; k++)
        snprintf(G.names[k], sizeof G.names[k], "%s%s", db, SUFFIX[k]);
    if (slash == NULL || (size_t)(slash - db) >= sizeof folder)
        return;
    memcpy(folder, db, (size_t)(slash - db));
    folder[slash - db] = '\0';
    if (realpath(slash == db ? "/" : folder, resolved) == NULL)
        return;
    for (int k = 0; k < 3; k++)
        snprintf(G.alt[k], sizeof G.alt[k], "%s%s%s", strcmp(resolved, "/") == 0 ? "" : resolved,
                 slash, SUFFIX[k]);
}

__attribute__((constructor)) static void vfs_shim_init(void)
{
    const char *db = getenv("LC_FAULT_VFS_DB"), *log = getenv("LC_FAULT_VFS_LOG");

    unsetenv("LD_PRELOAD"); /* for linecertd only, not for the programs it starts */
    if (db == NULL || *db == '\0')
        return;
    G.real = sqlite3_vfs_find(NULL);
    if (G.real == NULL) {
        fprintf(stderr, "vfs_shim: no default SQLite VFS to wrap\n");
        return;
    }
    set_names(db);
    G.ctl = getenv("LC_FAULT_VFS_CTL");
    G.full = getenv("LC_FAULT_VFS_FULL");
    if (log != NULL && *log != '\0')
        G.log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    G.vfs.iVersion = 2;
    G.vfs.szOsFile = (int)sizeof(struct shim_file) + G.real->szOsFile;
    G.vfs.mxPathname = G.real->mxPathname;
    G.vfs.zName = "lcfault";
    G.vfs.xOpen = v_open;
    G.vfs.xDelete = v_delete;
    G.vfs.xAccess = v_access;
    G.vfs.xFullPathname = v_full_pathname;
    G.vfs.xDlOpen = v_dl_open;
    G.vfs.xDlError = v_dl_error;
    G.vfs.xDlSym = v_dl_sym;
    G.vfs.xDlClose = v_dl_close;
    G.vfs.xRandomness = v_randomness;
    G.vfs.xSleep = v_sleep;
    G.vfs.xCurrentTime = v_current_time;
    G.vfs.xGetLastError = v_get_last_error;
    G.vfs.xCurrentTimeInt64 = v_current_time_int64;
    if (sqlite3_vfs_register(&G.vfs, 1) != SQLITE_OK)
        fprintf(stderr, "vfs_shim: cannot register the VFS\n");
}
