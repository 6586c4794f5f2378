/*
 * control.h — the daemon's control socket (docs/control.md).
 *
 * A Unix stream socket (mode 0660).  A client sends one request line —
 * "status", "pause <line>", "resume <line>" — and gets one JSON object on
 * one line back, then may send another request or close.  The server runs
 * on its own thread; every request is handed to the daemon's handler with
 * the peer's credentials (SO_PEERCRED), so that permission checks and the
 * audit of control actions happen in the daemon.
 */
#ifndef LINECERT_CONTROL_H
#define LINECERT_CONTROL_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct control control_t;

/* Who is asking. */
typedef struct control_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} control_peer_t;

/*
 * Called on the control thread for each request.  cmd is the first word,
 * arg the rest of the line (or "").  Returns a new JSON object (the reply;
 * the control module frees it after sending) — on error an object
 * {"ok": false, "error": "..."}.  Must not block for long.
 */
typedef json_object *(*control_handler_fn)(void *user, const char *cmd, const char *arg,
                                           const control_peer_t *peer);

/*
 * Binds path (replacing a stale socket file, refusing if another daemon
 * answers there), chmod 0660, and starts the server thread.
 * Returns LC_OK or LC_ERR_IO with a message.  Stop with control_free().
 */
int control_open(const char *path, control_handler_fn fn, void *user, control_t **out, char *err,
                 size_t errlen);

/* Stops the thread, closes clients, unlinks the socket.  NULL is a no-op. */
void control_free(control_t *c);

/*
 * Client side: connects to path, sends "cmd arg\n", reads one reply line
 * and parses it.  timeout_ms bounds the whole exchange.  Returns LC_OK with
 * *reply (caller json_object_put()s it), LC_ERR_IO if the daemon is not
 * there (message says so), LC_ERR_TIMEOUT, or LC_ERR_PROTOCOL.
 */
int control_request(const char *path, const char *cmd, const char *arg, int timeout_ms,
                    json_object **reply, char *err, size_t errlen);

#endif
