/*
 * control.h — the daemon's control socket (docs/control.md).
 *
 * A Unix stream socket.  A client sends one request line — "status",
 * "pause <line>", "resume <line>", "revoke ..." — and gets one JSON object
 * on one line back, then may send another request or close.  The server
 * runs on its own thread.
 *
 * The socket is also a security boundary, so this module decides who may
 * do what before the daemon sees a request: the kernel tells it who the
 * peer is (SO_PEERCRED: uid, gid, pid; SO_PEERGROUPS: the supplementary
 * groups at connect time), each command needs a role, and a role is a
 * group.  Root and the daemon's own user may do everything.  A refused
 * request never reaches the daemon's handler; it is answered
 * "permission denied: ..." and handed to the daemon's denial hook so that
 * it is audited.  The file's ACL lets the two groups connect at all; the
 * peer check is the real control.
 */
#ifndef LINECERT_CONTROL_H
#define LINECERT_CONTROL_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct control control_t;

#define CONTROL_DEFAULT_OPERATOR_GROUP "linecert-operators"
#define CONTROL_DEFAULT_SECURITY_GROUP "linecert-security"
#define CONTROL_NAME_MAX               64 /* user and group names, with the NUL */

/* What a command needs (docs/control.md, "Roles"). */
typedef enum control_role {
    CONTROL_ROLE_READ = 0, /* status and other read-only queries: operator OR security group */
    CONTROL_ROLE_OPERATE,  /* pause, resume: operator group */
    CONTROL_ROLE_SECURITY, /* revoke: security group */
    CONTROL_ROLE_DAEMON,   /* a command this module does not know: root and the daemon user only */
} control_role_t;

/* Who is asking: what the kernel said at connect time. */
typedef struct control_peer {
    pid_t pid;                   /* SO_PEERCRED */
    uid_t uid;                   /* SO_PEERCRED */
    gid_t gid;                   /* SO_PEERCRED: the primary group */
    const gid_t *groups;         /* SO_PEERGROUPS; valid only during the call it is passed to */
    size_t ngroups;              /* entries in groups */
    char user[CONTROL_NAME_MAX]; /* uid's user name at connect time; "" if it has none */
    char actor[CONTROL_NAME_MAX + 24]; /* "uid=1001(alice)" ("uid=1001" without a name): audit */
} control_peer_t;

/*
 * Who holds which role.  Built by control_policy_init(); a plain value, so
 * it can be copied and compared.
 */
typedef struct control_policy {
    uid_t daemon_uid;                      /* the daemon's euid: always allowed, as root is */
    char daemon_user[CONTROL_NAME_MAX];    /* its name, for messages ("" if none) */
    char operator_group[CONTROL_NAME_MAX]; /* group name holding CONTROL_ROLE_OPERATE */
    gid_t operator_gid;                    /* valid when operator_exists */
    int operator_exists;                   /* 0: no such group here, so nobody holds the role */
    char security_group[CONTROL_NAME_MAX]; /* group name holding CONTROL_ROLE_SECURITY */
    gid_t security_gid;                    /* valid when security_exists */
    int security_exists;
} control_policy_t;

/*
 * Fills pol for the calling process (daemon_uid = geteuid()), looking the
 * two groups up by name; NULL or "" means the default name.  A group that
 * does not exist is not an error here (config_load() already refused an
 * explicitly configured one): nobody but root and the daemon user holds
 * that role, and notice (if not NULL) gets one sentence saying so, for the
 * daemon to log once; otherwise notice is "".  Returns LC_OK, or
 * LC_ERR_CONFIG if a name is longer than CONTROL_NAME_MAX - 1 bytes.
 */
int control_policy_init(control_policy_t *pol, const char *operator_group,
                        const char *security_group, char *notice, size_t noticelen);

/*
 * Looks a group up by name (getgrnam_r, growing its buffer for long member
 * lists).  Returns 1 and *gid (if gid is not NULL) when it exists; 0 when it
 * does not, or when the group database cannot say (then nobody gets the
 * role: failing closed).
 */
int control_group_lookup(const char *name, gid_t *gid);

/*
 * The role a command needs: status -> READ, pause/resume -> OPERATE,
 * revoke -> SECURITY, anything else -> DAEMON (a command added to the
 * daemon but not to this table is closed by default).
 */
control_role_t control_command_role(const char *cmd);

/*
 * The permission decision, a pure function of its arguments: may a peer
 * with this uid, primary gid and supplementary groups act in role need
 * under pol?  Root and pol->daemon_uid may do everything; READ needs the
 * operator or the security group, OPERATE the operator group, SECURITY the
 * security group (as primary or supplementary group; a group that does not
 * exist matches nobody); DAEMON needs root or the daemon user.  groups may
 * be NULL when ngroups is 0.  Returns 1 if allowed, 0 if not.
 */
int control_authorize(control_role_t need, uid_t uid, gid_t gid, const gid_t *groups,
                      size_t ngroups, const control_policy_t *pol);

/*
 * The refusal sentence for a peer that control_authorize() turned down:
 * "permission denied: revoke needs group linecert-security; you are uid
 * 1001 (alice)".  Always NUL-terminates buf (if len > 0).
 */
void control_denial_message(control_role_t need, const char *cmd, const control_peer_t *peer,
                            const control_policy_t *pol, char *buf, size_t len);

/*
 * Called on the control thread for each allowed request.  cmd is the first
 * word, arg the rest of the line (or "").  Returns a new JSON object (the
 * reply; the control module frees it after sending) — on error an object
 * {"ok": false, "error": "..."}.  Must not block for long.  An action that
 * changes something must be audited here, with peer->actor as the actor.
 */
typedef json_object *(*control_handler_fn)(void *user, const char *cmd, const char *arg,
                                           const control_peer_t *peer);

/*
 * Called on the control thread for each refused request, before the
 * refusal is sent, with the same sentence the client gets.  The daemon
 * audits it (docs/control.md, "Auditing").  cmd and arg come from somebody
 * who was just refused, so they arrive cut to 32 and 128 characters of
 * printable ASCII ('?' for any other byte), safe for a log or an audit
 * row.  Must not block for long.
 */
typedef void (*control_denied_fn)(void *user, const char *cmd, const char *arg,
                                  const control_peer_t *peer, const char *message);

typedef struct control_opts {
    control_handler_fn handler; /* required */
    control_denied_fn denied;   /* optional: NULL refuses without telling anybody */
    void *user;                 /* passed to both */
    control_policy_t policy;    /* from control_policy_init() */
} control_opts_t;

/*
 * Binds path (replacing a stale socket file, refusing if another daemon
 * answers there), sets mode 0660 plus an ACL that lets the operator and
 * security groups connect, and starts the server thread.  If the file
 * system has no ACLs only the daemon's user and group can connect; that is
 * not an error but is said in control_notice().  Returns LC_OK, or
 * LC_ERR_IO / LC_ERR_INTERNAL with a message.  Stop with control_free().
 */
int control_open_opts(const char *path, const control_opts_t *opts, control_t **out, char *err,
                      size_t errlen);

/*
 * control_open_opts() with the default policy (the default group names,
 * looked up now) and no denial hook.
 */
int control_open(const char *path, control_handler_fn fn, void *user, control_t **out, char *err,
                 size_t errlen);

/*
 * What the daemon should log once after opening: missing groups, no ACL
 * support.  "" if nothing.  Owned by c; changes only in control_set_policy().
 */
const char *control_notice(const control_t *c);

/*
 * Replaces the policy (after a configuration reload) and the socket's ACL.
 * Requests already being handled finish under the old one.  Returns LC_OK,
 * or LC_ERR_IO if the ACL could not be set (the old policy stays).
 */
int control_set_policy(control_t *c, const control_policy_t *pol, char *err, size_t errlen);

/* Stops the thread, closes clients, unlinks the socket.  NULL is a no-op. */
void control_free(control_t *c);

/*
 * Client side: connects to path, sends "cmd arg\n", reads one reply line
 * and parses it.  timeout_ms bounds the whole exchange.  Returns LC_OK with
 * *reply (caller json_object_put()s it), LC_ERR_IO if the daemon is not
 * there or the socket may not be opened (message says so), LC_ERR_TIMEOUT,
 * or LC_ERR_PROTOCOL.
 */
int control_request(const char *path, const char *cmd, const char *arg, int timeout_ms,
                    json_object **reply, char *err, size_t errlen);

#endif
