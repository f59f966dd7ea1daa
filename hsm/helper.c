/*
 * hsm/helper.c - signing helpers: the pool's C_Sign in processes of their
 * own.
 *
 * Why: SoftHSM 2.6 runs much of C_SignInit/C_Sign under process-wide
 * mutexes (its secure-memory registry among them).  On this project's
 * 2-core machines one process of two signing threads makes about 36k
 * ECDSA P-256 signatures/s, two processes of one thread each about 47k/s
 * (scripts/bench-hsm).  A hardware HSM's client library may serialise
 * inside one process too.  So a pool thread may drive a helper: a fresh
 * process (posix_spawn of an executable the caller names, whose main
 * calls hsm_helper_main when given HSM_HELPER_ARG) that opens the same
 * HSMs from the same URIs, logs in, makes its own session copies of the
 * keys and signs what the thread sends it over a socket.  Never a bare
 * fork: the caller is multi-threaded and its PKCS#11 modules are
 * initialised; neither survives a fork.
 *
 * Trust: nothing a helper returns is taken on faith.  Before a helper
 * signs for the pool, the pool has it sign one random challenge per HSM
 * and key and verifies each against the DNSKEY (pool.c): the proof again,
 * of the helper's own keys.  After that the pool checks a helper's
 * signatures as its own: their length, and 1 of verify_every against the
 * DNSKEY, with the same consequences.
 *
 * Secrets: the URIs (which may carry pin-value) go over the socket, never
 * on argv or in the environment; a pin-source file is read by the helper.
 * The helper wipes the URIs when it has logged in.
 *
 * Protocol, both ends being the same build, in host byte order: a message
 * is u32 type, u32 length, then length bytes of payload.
 *   SETUP  u32 nuris, u32 token_keys, u32 nkeys,
 *          nuris x (u32 len, text),
 *          nkeys x (u32 alg, u32 removed, u32 id_len, id)
 *   READY  empty, or ERROR: i32 hsm_error, text for a person
 *   SIGN   u32 hsm (0-based), u32 n, n x (u32 key, u32 len, data)
 *   SIGS   u32 done, u32 rv, done x (u16 len, signature)
 * A helper signs a SIGN's jobs in order and stops at the first C_Sign
 * that fails: then done < n and rv is its CK_RV; else done == n and rv is
 * CKR_OK.  EOF on the socket ends the helper (exit 0).  Anything out of
 * protocol ends it too (exit 2); the pool then signs in its own process.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hsm/internal.h"

extern char **environ;

enum { MSG_SETUP = 1, MSG_READY, MSG_ERROR, MSG_SIGN, MSG_SIGS };

#define MSG_MAX (64u << 20) /* largest payload either end accepts */
#define SIG_MAX 512         /* raw_sign's largest signature */
#define READY_MS 20000      /* a helper's time to open and log in */

/* ---- bytes on the socket ------------------------------------------------ */

static int send_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 0 read, 1 clean EOF before the first byte, -1 error or EOF inside. */
static int recv_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && got == 0)
            return 1;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* A growing message buffer; the first 8 bytes are the header. */
struct msg {
    uint8_t *b;
    size_t len, cap;
    bool bad; /* out of memory or too long */
};

static void msg_start(struct msg *m, uint32_t type)
{
    m->len = 0;
    m->bad = false;
    if (m->cap < 8) {
        uint8_t *b = realloc(m->b, 4096);
        if (b == NULL) {
            m->bad = true;
            return;
        }
        m->b = b;
        m->cap = 4096;
    }
    memcpy(m->b, &type, 4);
    m->len = 8;
}

static void msg_put(struct msg *m, const void *p, size_t n)
{
    if (m->bad)
        return;
    if (m->len + n > 8 + (size_t)MSG_MAX) {
        m->bad = true;
        return;
    }
    if (m->len + n > m->cap) {
        size_t cap = m->cap;
        while (cap < m->len + n)
            cap *= 2;
        uint8_t *b = realloc(m->b, cap);
        if (b == NULL) {
            m->bad = true;
            return;
        }
        m->b = b;
        m->cap = cap;
    }
    memcpy(m->b + m->len, p, n);
    m->len += n;
}

static void msg_u32(struct msg *m, uint32_t v) { msg_put(m, &v, 4); }

static int msg_send(int fd, struct msg *m)
{
    uint32_t len = (uint32_t)(m->len - 8);
    if (m->bad)
        return -1;
    memcpy(m->b + 4, &len, 4);
    return send_all(fd, m->b, m->len);
}

/* Reads one message into m (payload at m->b, m->len bytes).  Returns its
 * type, 0 on a clean EOF, -1 on error. */
static int msg_recv(int fd, struct msg *m)
{
    uint32_t hdr[2];
    int r = recv_all(fd, hdr, sizeof(hdr));
    if (r != 0)
        return r == 1 ? 0 : -1;
    if (hdr[0] == 0 || hdr[1] > MSG_MAX)
        return -1;
    if (hdr[1] > m->cap) {
        uint8_t *b = realloc(m->b, hdr[1]);
        if (b == NULL)
            return -1;
        m->b = b;
        m->cap = hdr[1];
    }
    if (hdr[1] > 0 && recv_all(fd, m->b, hdr[1]) != 0)
        return -1;
    m->len = hdr[1];
    return (int)hdr[0];
}

/* Reading a payload: every take checks the bounds. */
struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
    const uint8_t *p = r->p;
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t take_u32(struct rd *r)
{
    uint32_t v = 0;
    const uint8_t *p = take(r, 4);
    if (p != NULL)
        memcpy(&v, p, 4);
    return v;
}

/* ---- the helper process ------------------------------------------------- */

struct hkey {
    uint8_t alg;
    bool removed;
    uint8_t id[HSM_ID_MAX];
    size_t id_len;
};

struct helper_state {
    struct hsm_set *set;
    size_t nkeys;
    struct hkey *keys;
    CK_SESSION_HANDLE *sess;  /* per HSM */
    CK_OBJECT_HANDLE *obj;    /* per (HSM, key) */
};

static int reply_error(int fd, int code, const char *text)
{
    struct msg m = {0};
    int32_t c = code;
    int rc;
    msg_start(&m, MSG_ERROR);
    msg_put(&m, &c, 4);
    msg_put(&m, text, strlen(text));
    rc = msg_send(fd, &m);
    free(m.b);
    return rc;
}

/* Opens the HSMs of a SETUP and finds (copies) the keys.  On failure the
 * diagnostic says why; the URIs are wiped either way. */
static int helper_setup(struct helper_state *s, struct msg *in,
                        hsm_diag_t *diag)
{
    struct rd r = {in->b, in->len, false};
    uint32_t nuris = take_u32(&r), token_keys = take_u32(&r);
    uint32_t nkeys = take_u32(&r);
    char **uris = NULL;
    int rc = -EPROTO;

    if (r.bad || nuris == 0 || nuris > 1024 || nkeys > 4096)
        goto wipe;
    if ((uris = calloc(nuris, sizeof(*uris))) == NULL ||
        (s->keys = calloc(nkeys ? nkeys : 1, sizeof(*s->keys))) == NULL) {
        rc = -ENOMEM;
        goto wipe;
    }
    for (uint32_t i = 0; i < nuris; i++) {
        uint32_t len = take_u32(&r);
        const uint8_t *t = take(&r, len);
        if (t == NULL || (uris[i] = calloc(1, (size_t)len + 1)) == NULL)
            goto wipe;
        memcpy(uris[i], t, len);
    }
    for (uint32_t k = 0; k < nkeys; k++) {
        struct hkey *hk = &s->keys[k];
        hk->alg = (uint8_t)take_u32(&r);
        hk->removed = take_u32(&r) != 0;
        hk->id_len = take_u32(&r);
        const uint8_t *id = take(&r, hk->id_len);
        if (id == NULL || hk->id_len > HSM_ID_MAX)
            goto wipe;
        memcpy(hk->id, id, hk->id_len);
    }
    s->nkeys = nkeys;
    if (r.left != 0)
        goto wipe;
    rc = hsm_set_open(&s->set, (const char *const *)uris, nuris, diag);
    if (rc != 0)
        goto wipe;
    /* the set's own copies of the URIs are for starting helpers, which a
     * helper does not do: wiped now with the rest */
    for (size_t i = 0; i < nuris; i++) {
        OPENSSL_cleanse(s->set->uri[i], strlen(s->set->uri[i]));
        free(s->set->uri[i]);
        s->set->uri[i] = NULL;
    }
    s->sess = calloc(nuris, sizeof(*s->sess));
    s->obj = calloc((size_t)nuris * (nkeys ? nkeys : 1), sizeof(*s->obj));
    if (s->sess == NULL || s->obj == NULL) {
        rc = -ENOMEM;
        goto wipe;
    }
    for (size_t i = 0; i < nuris && rc == 0; i++) {
        struct hsm_token *t = &s->set->tok[i];
        CK_RV rv = t->mod->f->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION,
                                            NULL, NULL, &s->sess[i]);
        if (rv != CKR_OK) {
            s->sess[i] = 0;
            diag_set(diag, "HSM %zu (token %s): C_OpenSession: %s", i + 1,
                     t->label, hsm_ckr_name(rv));
            rc = HSM_EDEVICE;
            break;
        }
        for (size_t k = 0; k < nkeys; k++) {
            CK_OBJECT_HANDLE *o = &s->obj[i * nkeys + k], copy;
            CK_BBOOL no = CK_FALSE;
            CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
            if (s->keys[k].removed)
                continue;
            if (raw_find(t, s->sess[i], CKO_PRIVATE_KEY, s->keys[k].id,
                         s->keys[k].id_len, NULL, o, 1) != 1) {
                diag_set(diag, "HSM %zu (token %s): key %zu: not exactly "
                         "one private key", i + 1, t->label, k);
                rc = HSM_ENOKEY;
                break;
            }
            if (!token_keys &&
                t->mod->f->C_CopyObject(s->sess[i], *o, tmpl, 1, &copy) ==
                    CKR_OK)
                *o = copy;
        }
    }
wipe:
    for (uint32_t i = 0; uris != NULL && i < nuris; i++)
        if (uris[i] != NULL) {
            OPENSSL_cleanse(uris[i], strlen(uris[i]));
            free(uris[i]);
        }
    free(uris);
    OPENSSL_cleanse(in->b, in->len);
    if (rc == -EPROTO)
        diag_set(diag, "malformed set-up message");
    return rc;
}

/* One SIGN: the jobs in order, up to the first failure. */
static int helper_sign_jobs(struct helper_state *s, struct msg *in,
                            struct msg *out)
{
    struct rd r = {in->b, in->len, false};
    uint32_t hsm = take_u32(&r), n = take_u32(&r), done = 0;
    uint32_t rv32 = CKR_OK;
    uint8_t sig[SIG_MAX];

    if (r.bad || hsm >= s->set->n)
        return -1;
    msg_start(out, MSG_SIGS);
    msg_u32(out, 0); /* done and rv: filled in below */
    msg_u32(out, 0);
    for (uint32_t j = 0; j < n; j++) {
        uint32_t key = take_u32(&r), len = take_u32(&r);
        const uint8_t *data = take(&r, len);
        size_t sl = 0;
        CK_RV rv;
        if (data == NULL || key >= s->nkeys || s->keys[key].removed)
            return -1;
        rv = raw_sign(s->set->tok[hsm].mod->f, s->sess[hsm],
                      s->obj[hsm * s->nkeys + key], s->keys[key].alg, data,
                      len, sig, &sl);
        if (rv != CKR_OK || sl > SIG_MAX) {
            rv32 = rv != CKR_OK ? (uint32_t)rv : (uint32_t)CKR_GENERAL_ERROR;
            break;
        }
        uint16_t l16 = (uint16_t)sl;
        msg_put(out, &l16, 2);
        msg_put(out, sig, sl);
        done++;
    }
    if (done == n && r.left != 0)
        return -1;
    if (out->bad)
        return -1;
    memcpy(out->b + 8, &done, 4);
    memcpy(out->b + 12, &rv32, 4);
    return 0;
}

int hsm_helper_main(void)
{
    struct helper_state s = {0};
    struct msg in = {0}, out = {0};
    struct stat st;
    hsm_diag_t diag = {{0}};
    int fd = HSM_HELPER_FD, type, err, rc = 2;

    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "signing helper: descriptor %d is not a socket; a "
                        "helper is started by a signing pool, not by "
                        "hand\n", fd);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (msg_recv(fd, &in) != MSG_SETUP) {
        fprintf(stderr, "signing helper: no set-up message\n");
        goto out;
    }
    if ((err = helper_setup(&s, &in, &diag)) != 0) {
        reply_error(fd, err, diag.msg);
        goto out;
    }
    msg_start(&out, MSG_READY);
    if (msg_send(fd, &out) != 0)
        goto out;
    for (;;) {
        type = msg_recv(fd, &in);
        if (type == 0) {
            rc = 0; /* the pool is done */
            break;
        }
        if (type != MSG_SIGN || helper_sign_jobs(&s, &in, &out) != 0 ||
            msg_send(fd, &out) != 0) {
            fprintf(stderr, "signing helper: protocol error; stopping\n");
            break;
        }
    }
out:
    for (size_t i = 0; s.set != NULL && s.sess != NULL && i < s.set->n; i++)
        if (s.sess[i] != 0)
            s.set->tok[i].mod->f->C_CloseSession(s.sess[i]);
    hsm_set_free(s.set);
    free(s.sess);
    free(s.obj);
    free(s.keys);
    free(in.b);
    free(out.b);
    return rc;
}

/* ---- the pool's end ----------------------------------------------------- */

const char *const hsm_helper_self[] = {"/proc/self/exe", HSM_HELPER_ARG,
                                       NULL};

int helper_spawn(struct hsm_helper *h, const char *const *argv,
                 const struct hsm_set *set, const hsm_keyset_t *ks,
                 bool token_keys, hsm_diag_t *diag)
{
    int sv[2], rc;
    posix_spawn_file_actions_t fa;
    char **env = NULL;
    size_t nenv = 0;
    struct msg m = {0};

    h->fd = -1;
    h->pid = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        diag_set(diag, "socketpair: %s", strerror(errno));
        return -errno;
    }
    if (sv[1] == HSM_HELPER_FD) { /* dup2 onto itself keeps CLOEXEC */
        int d = fcntl(sv[1], F_DUPFD_CLOEXEC, HSM_HELPER_FD + 1);
        close(sv[1]);
        sv[1] = d;
    }
    while (environ != NULL && environ[nenv] != NULL)
        nenv++;
    env = calloc(nenv + 2, sizeof(*env));
    if (sv[1] < 0 || env == NULL) {
        close(sv[0]);
        if (sv[1] >= 0)
            close(sv[1]);
        free(env);
        diag_set(diag, "no resources for a signing helper");
        return -ENOMEM;
    }
    memcpy(env, environ, nenv * sizeof(*env));
    env[nenv] = (char *)HSM_HELPER_ENV "=1";
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], HSM_HELPER_FD);
    rc = posix_spawn(&h->pid, argv[0], &fa, NULL, (char *const *)argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        h->pid = 0;
        diag_set(diag, "cannot start %s: %s", argv[0], strerror(rc));
        return -rc;
    }
    h->fd = sv[0];
    /* SETUP: the URIs (PINs inside), then what each key is */
    msg_start(&m, MSG_SETUP);
    msg_u32(&m, (uint32_t)set->n);
    msg_u32(&m, token_keys);
    msg_u32(&m, (uint32_t)ks->count);
    for (size_t i = 0; i < set->n; i++) {
        msg_u32(&m, (uint32_t)strlen(set->uri[i]));
        msg_put(&m, set->uri[i], strlen(set->uri[i]));
    }
    for (size_t k = 0; k < ks->count; k++) {
        msg_u32(&m, ks->keys[k].alg);
        msg_u32(&m, ks->keys[k].state == HSM_STATE_REMOVED);
        msg_u32(&m, (uint32_t)ks->keys[k].id_len);
        msg_put(&m, ks->keys[k].id, ks->keys[k].id_len);
    }
    rc = msg_send(h->fd, &m);
    if (m.b != NULL)
        OPENSSL_cleanse(m.b, m.cap);
    free(m.b);
    if (rc != 0) {
        diag_set(diag, "the signing helper did not take its set-up");
        helper_stop(h);
        return HSM_EDEVICE;
    }
    return 0;
}

int helper_ready(struct hsm_helper *h, hsm_diag_t *diag)
{
    struct msg m = {0};
    struct pollfd pf = {.fd = h->fd, .events = POLLIN};
    int type, rc = 0, n;
    /* libp11 0.4.12 waits for ever in PKCS11_login when the module will
     * not open a session: a helper that is not ready in time is ended */
    while ((n = poll(&pf, 1, READY_MS)) < 0 && errno == EINTR)
        ;
    if (n == 0) {
        kill(h->pid, SIGKILL);
        diag_set(diag, "not ready after %d s", READY_MS / 1000);
        return HSM_EDEVICE;
    }
    type = msg_recv(h->fd, &m);
    if (type == MSG_ERROR && m.len >= 4) {
        int32_t code;
        memcpy(&code, m.b, 4);
        diag_set(diag, "%.*s", (int)(m.len - 4 < 900 ? m.len - 4 : 900),
                 (const char *)m.b + 4);
        rc = code < 0 ? code : HSM_EDEVICE;
    } else if (type != MSG_READY || m.len != 0) {
        diag_set(diag, "it ended before it was ready");
        rc = HSM_EDEVICE;
    }
    free(m.b);
    return rc;
}

int helper_sign(struct hsm_helper *h, size_t hsm, const hsm_job_t *jobs,
                size_t n, uint8_t *sigs, uint16_t *lens, CK_RV *rv)
{
    struct msg *m = (struct msg *)h->buf;
    struct rd r;
    uint32_t done, rv32;
    if (m == NULL) {
        if ((m = calloc(1, sizeof(*m))) == NULL)
            return -1;
        h->buf = m;
    }
    msg_start(m, MSG_SIGN);
    msg_u32(m, (uint32_t)hsm);
    msg_u32(m, (uint32_t)n);
    for (size_t j = 0; j < n; j++) {
        msg_u32(m, jobs[j].key);
        msg_u32(m, jobs[j].len);
        msg_put(m, jobs[j].data, jobs[j].len);
    }
    if (msg_send(h->fd, m) != 0 || msg_recv(h->fd, m) != MSG_SIGS)
        return -1;
    r = (struct rd){m->b, m->len, false};
    done = take_u32(&r);
    rv32 = take_u32(&r);
    if (r.bad || done > n || (done == n) != (rv32 == CKR_OK))
        return -1;
    for (uint32_t j = 0; j < done; j++) {
        uint16_t len;
        const uint8_t *p = take(&r, 2), *s;
        if (p == NULL)
            return -1;
        memcpy(&len, p, 2);
        if (len > SIG_MAX || (s = take(&r, len)) == NULL)
            return -1;
        memcpy(sigs + (size_t)j * SIG_MAX, s, len);
        lens[j] = len;
    }
    if (r.left != 0)
        return -1;
    *rv = rv32;
    return (int)done;
}

int helper_stop(struct hsm_helper *h)
{
    struct msg *m = (struct msg *)h->buf;
    int ret = 0;
    if (h->fd >= 0)
        close(h->fd); /* EOF: the helper logs out and exits */
    h->fd = -1;
    if (h->pid > 0) {
        /* a helper stuck in its HSM gets 5 s, then SIGKILL */
        struct timespec ts = {0, 1000 * 1000};
        int st;
        for (int i = 0; i < 5000; i++) {
            pid_t r = waitpid(h->pid, &st, WNOHANG);
            if (r < 0 && errno != EINTR) {
                ret = -1;
                break;
            }
            if (r == h->pid || i == 4999) {
                if (r != h->pid) {
                    kill(h->pid, SIGKILL);
                    waitpid(h->pid, &st, 0);
                }
                ret = WIFEXITED(st)     ? WEXITSTATUS(st)
                      : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                        : -1;
                break;
            }
            nanosleep(&ts, NULL);
        }
    }
    h->pid = 0;
    if (m != NULL)
        free(m->b);
    free(m);
    h->buf = NULL;
    return ret;
}
