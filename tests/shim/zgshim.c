/*
 * tests/shim/zgshim.c - libzgshim.so, a fault-injecting PKCS#11 module.
 *
 * What it does: it is loaded like any PKCS#11 module (by module path from
 * libp11, pkcs11-tool or dlopen) and forwards every call to a real module,
 * $ZG_SHIM_MODULE (default /usr/lib/softhsm/libsofthsm2.so).  Its
 * C_GetFunctionList hands out a copy of the real function list in which
 * only the initialise, session, login, signing and copy entries are replaced by
 * wrappers; everything else goes straight to the real module.  The
 * wrappers inject faults per token (chosen by token label), read from the
 * file $ZG_SHIM_CONF at C_Initialize.  Syntax and semantics: README.
 *
 * Counting: each token has one counter of signatures the real module has
 * produced through this process (C_Sign or C_SignFinal that returned
 * CKR_OK with an output buffer; size queries are not counted).  The
 * signature that takes the counter from n to n+1 has ordinal n; a fault
 * with after=N acts on ordinals N, N+1, ...  The ordinal is taken with one
 * atomic fetch-add after the real call, so exactly N signatures are left
 * alone even when several threads sign at once.  A faulted C_Sign still
 * lets the real module finish its operation first, so the session's state
 * in the real module stays consistent.
 *
 * What it does not do: it has no faults for verification, key generation,
 * C_SignRecover or the PKCS#11 3.0 interfaces (C_GetInterface is not
 * exported, so consumers fall back to C_GetFunctionList); a lost session
 * fails only the signing calls; swapkey needs the "evil" key to be of the
 * same type and size as the one it replaces.  Counters live in the process:
 * they restart at every C_Initialize.  It uses pthreads for its own lock
 * whatever locking arguments the application passes (those go to the real
 * module unchanged).  A PKCS#11 module has no context argument, so the
 * state below is necessarily global to the process.
 */
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__((visibility("default")))
#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL_MAX 32 /* CK_TOKEN_INFO.label is 32 bytes, blank padded */
#define KEYLABEL_MAX 64
#define MAX_TOKENS 32
#define MAX_SLOTS 64
#define PARAM_MAX 256 /* largest mechanism parameter swapkey can replay */
#define DELAY_MAX_MS 600000UL
#define HELPER_ENV "ZONEGATE_SIGNING_HELPER" /* set in a signing helper */
#define EXIT_STATUS 70                       /* fault=exit */

enum fault_kind {
    FAULT_SWAPKEY,
    FAULT_FLIPBIT,
    FAULT_DEVERROR,
    FAULT_DELAY,
    FAULT_LOSESESSION,
    FAULT_NOCOPY,
    FAULT_BADCOPY,
    FAULT_EXIT,
    FAULT_STUCK,
    FAULT_COUNT
};

static const char *const fault_names[FAULT_COUNT] = {
    "swapkey", "flipbit", "deverror", "delay", "losesession", "nocopy",
    "badcopy", "exit", "stuck",
};

struct fault {
    bool on;
    unsigned long after;
    unsigned long ms;             /* delay only */
    char label[KEYLABEL_MAX + 1]; /* swapkey, badcopy: the evil key's
                                   * CKA_LABEL */
};

/* One token named in the configuration. */
struct token {
    char label[LABEL_MAX + 1];
    atomic_ulong count; /* signatures made on this token, see header */
    struct fault f[FAULT_COUNT];
};

/* One session opened on a configured token; used by one thread at a time
 * (PKCS#11 forbids concurrent use of a session). */
struct session {
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
    struct token *tok;
    bool lost;
    bool mech_ok; /* mech/param hold the last C_SignInit's */
    CK_MECHANISM mech;
    unsigned char param[PARAM_MAX];
    CK_OBJECT_HANDLE evil;
    bool have_evil;
    unsigned char *buf; /* C_SignUpdate data, replayed by swapkey */
    size_t len, cap;
};

struct slot_cache {
    CK_SLOT_ID id;
    struct token *tok; /* NULL: token not configured */
};

static struct {
    pthread_once_t once;
    CK_RV load_rv;
    CK_FUNCTION_LIST *real;
    CK_FUNCTION_LIST list;
    pthread_mutex_t lock; /* guards everything below */
    struct token *tokens;
    size_t ntokens;
    struct slot_cache slots[MAX_SLOTS];
    size_t nslots;
    struct session **sess;
    size_t nsess, capsess;
} g = {
    .once = PTHREAD_ONCE_INIT,
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- configuration ---------------------------------------------------- */

static int conf_error(const char *path, unsigned line, const char *what,
                      const char *arg)
{
    fprintf(stderr, "zgshim: %s:%u: %s%s%s\n", path, line, what,
            arg ? ": " : "", arg ? arg : "");
    return -1;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static struct token *token_get(struct token *t, size_t *n, const char *label)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].label, label) == 0)
            return &t[i];
    if (*n == MAX_TOKENS)
        return NULL;
    memset(&t[*n], 0, sizeof t[*n]);
    strcpy(t[*n].label, label);
    atomic_init(&t[*n].count, 0);
    return &t[(*n)++];
}

/* Parses one line (comment already cut off) into t[]; -1 after printing. */
static int conf_line(char *text, const char *path, unsigned ln, struct token *t,
                     size_t *n)
{
    char *save = NULL, *tok_label = NULL, *keylabel = NULL;
    const char *afters = NULL, *mss = NULL, *in = NULL;
    int kind = -1;
    struct fault f = {.on = true};
    struct token *tok;

    for (char *w = strtok_r(text, " \t\r\n", &save); w;
         w = strtok_r(NULL, " \t\r\n", &save)) {
        char *v = strchr(w, '=');
        if (!v || v == w || !v[1])
            return conf_error(path, ln, "expected key=value", w);
        *v++ = '\0';
        if (strcmp(w, "token") == 0 && !tok_label)
            tok_label = v;
        else if (strcmp(w, "label") == 0 && !keylabel)
            keylabel = v;
        else if (strcmp(w, "after") == 0 && !afters)
            afters = v;
        else if (strcmp(w, "ms") == 0 && !mss)
            mss = v;
        else if (strcmp(w, "in") == 0 && !in)
            in = v;
        else if (strcmp(w, "fault") == 0 && kind < 0) {
            for (int k = 0; k < FAULT_COUNT; k++)
                if (strcmp(v, fault_names[k]) == 0)
                    kind = k;
            if (kind < 0)
                return conf_error(path, ln, "unknown fault", v);
        } else
            return conf_error(path, ln, "unknown or repeated key", w);
    }
    if (!tok_label && kind < 0 && !keylabel && !afters && !mss && !in)
        return 0; /* blank line */
    if (in && strcmp(in, "helper") != 0 && strcmp(in, "main") != 0)
        return conf_error(path, ln, "in= wants helper or main", in);
    if (!tok_label || strlen(tok_label) > LABEL_MAX)
        return conf_error(path, ln, "token=LABEL (1-32 chars) required", NULL);
    if (kind < 0)
        return conf_error(path, ln, "fault= required", NULL);
    if (afters && !parse_ulong(afters, ULONG_MAX, &f.after))
        return conf_error(path, ln, "after= wants a count", afters);
    if ((kind == FAULT_DELAY) != (mss != NULL))
        return conf_error(path, ln, "ms= goes with fault=delay only", NULL);
    if (mss && !parse_ulong(mss, DELAY_MAX_MS, &f.ms))
        return conf_error(path, ln, "ms= wants 0..600000", mss);
    if ((kind == FAULT_SWAPKEY || kind == FAULT_BADCOPY) != (keylabel != NULL))
        return conf_error(path, ln,
                          "label= goes with fault=swapkey or badcopy only",
                          NULL);
    if (keylabel && strlen(keylabel) > KEYLABEL_MAX)
        return conf_error(path, ln, "label= longer than 64", NULL);
    if (keylabel)
        strcpy(f.label, keylabel);
    if (in && (strcmp(in, "helper") == 0) != (getenv(HELPER_ENV) != NULL))
        return 0; /* for the other kind of process */
    tok = token_get(t, n, tok_label);
    if (!tok)
        return conf_error(path, ln, "too many tokens", NULL);
    if (tok->f[kind].on)
        return conf_error(path, ln, "fault repeated for token", tok_label);
    tok->f[kind] = f;
    return 0;
}

/* Reads $ZG_SHIM_CONF.  Unset or empty: no faults (*out = NULL).  Set but
 * unreadable or malformed: one line on stderr and -1. */
static int conf_load(struct token **out, size_t *nout)
{
    const char *path = getenv("ZG_SHIM_CONF");
    struct token *t = NULL;
    size_t n = 0;
    unsigned ln = 0;
    char line[1024];
    FILE *fp = NULL;
    int ret = -1;

    *out = NULL;
    *nout = 0;
    if (!path || !*path)
        return 0;
    fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "zgshim: %s: %s\n", path, strerror(errno));
        return -1;
    }
    t = calloc(MAX_TOKENS, sizeof *t);
    if (!t) {
        fprintf(stderr, "zgshim: out of memory\n");
        goto out;
    }
    while (fgets(line, sizeof line, fp)) {
        ln++;
        if (!strchr(line, '\n') && !feof(fp)) {
            conf_error(path, ln, "line too long", NULL);
            goto out;
        }
        line[strcspn(line, "#")] = '\0';
        if (conf_line(line, path, ln, t, &n) < 0)
            goto out;
    }
    if (ferror(fp)) {
        fprintf(stderr, "zgshim: %s: read error\n", path);
        goto out;
    }
    *out = t;
    *nout = n;
    t = NULL;
    ret = 0;
out:
    free(t);
    fclose(fp);
    return ret;
}

/* ---- tables (callers hold g.lock) -------------------------------------- */

static struct token *token_by_label(const CK_UTF8CHAR label[32])
{
    char s[LABEL_MAX + 1];
    size_t len = LABEL_MAX;

    memcpy(s, label, LABEL_MAX);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    s[len] = '\0';
    for (size_t i = 0; i < g.ntokens; i++)
        if (strcmp(g.tokens[i].label, s) == 0)
            return &g.tokens[i];
    return NULL;
}

/* The configured token in a slot, NULL if none; cached per slot. */
static CK_RV token_of_slot(CK_SLOT_ID slot, struct token **out)
{
    CK_TOKEN_INFO info;
    CK_RV rv;

    for (size_t i = 0; i < g.nslots; i++) {
        if (g.slots[i].id == slot) {
            *out = g.slots[i].tok;
            return CKR_OK;
        }
    }
    rv = g.real->C_GetTokenInfo(slot, &info);
    if (rv != CKR_OK)
        return rv;
    *out = token_by_label(info.label);
    if (g.nslots < MAX_SLOTS)
        g.slots[g.nslots++] = (struct slot_cache){slot, *out};
    return CKR_OK;
}

static void session_free(struct session *s)
{
    if (s) {
        free(s->buf);
        free(s);
    }
}

static struct session *session_find(CK_SESSION_HANDLE h)
{
    struct session *s = NULL;

    pthread_mutex_lock(&g.lock);
    for (size_t i = 0; i < g.nsess; i++) {
        if (g.sess[i]->h == h) {
            s = g.sess[i];
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return s;
}

static void sessions_drop(bool all, CK_SLOT_ID slot, CK_SESSION_HANDLE h)
{
    size_t j = 0;

    for (size_t i = 0; i < g.nsess; i++) {
        struct session *s = g.sess[i];
        if (all ? s->slot == slot : s->h == h)
            session_free(s);
        else
            g.sess[j++] = s;
    }
    g.nsess = j;
}

static void state_clear(void)
{
    for (size_t i = 0; i < g.nsess; i++)
        session_free(g.sess[i]);
    free(g.sess);
    g.sess = NULL;
    g.nsess = g.capsess = 0;
    free(g.tokens);
    g.tokens = NULL;
    g.ntokens = 0;
    g.nslots = 0;
}

/* ---- initialise and sessions ------------------------------------------ */

static CK_RV shim_Initialize(void *args)
{
    struct token *t;
    size_t n;
    CK_RV rv;

    if (conf_load(&t, &n) < 0)
        return CKR_GENERAL_ERROR;
    /* CK_C_INITIALIZE_ARGS (CKF_OS_LOCKING_OK or mutex callbacks) are the
     * application's contract with the real module: pass them unchanged. */
    rv = g.real->C_Initialize(args);
    if (rv != CKR_OK) {
        free(t);
        return rv;
    }
    pthread_mutex_lock(&g.lock);
    state_clear();
    g.tokens = t;
    g.ntokens = n;
    pthread_mutex_unlock(&g.lock);
    return CKR_OK;
}

static CK_RV shim_Finalize(void *reserved)
{
    CK_RV rv = g.real->C_Finalize(reserved);

    if (rv == CKR_OK) {
        pthread_mutex_lock(&g.lock);
        state_clear();
        pthread_mutex_unlock(&g.lock);
    }
    return rv;
}

static CK_RV session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot,
                         struct token *tok)
{
    struct session *s = calloc(1, sizeof *s);

    if (!s)
        return CKR_HOST_MEMORY;
    s->h = h;
    s->slot = slot;
    s->tok = tok;
    if (g.nsess == g.capsess) {
        size_t cap = g.capsess ? 2 * g.capsess : 16;
        struct session **p = realloc(g.sess, cap * sizeof *p);
        if (!p) {
            free(s);
            return CKR_HOST_MEMORY;
        }
        g.sess = p;
        g.capsess = cap;
    }
    g.sess[g.nsess++] = s;
    return CKR_OK;
}

static CK_RV shim_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app,
                              CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
    CK_SESSION_HANDLE h;
    struct token *tok = NULL;
    CK_RV rv;

    if (!out)
        return g.real->C_OpenSession(slot, flags, app, notify, out);
    rv = g.real->C_OpenSession(slot, flags, app, notify, &h);
    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&g.lock);
    if (g.ntokens > 0) {
        rv = token_of_slot(slot, &tok);
        if (rv == CKR_OK && tok)
            rv = session_add(h, slot, tok);
    }
    pthread_mutex_unlock(&g.lock);
    if (rv != CKR_OK) {
        g.real->C_CloseSession(h);
        return rv;
    }
    *out = h;
    return CKR_OK;
}

static CK_RV shim_CloseSession(CK_SESSION_HANDLE h)
{
    CK_RV rv = g.real->C_CloseSession(h);

    pthread_mutex_lock(&g.lock);
    sessions_drop(false, 0, h);
    pthread_mutex_unlock(&g.lock);
    return rv;
}

static CK_RV shim_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv = g.real->C_CloseAllSessions(slot);

    pthread_mutex_lock(&g.lock);
    sessions_drop(true, slot, 0);
    pthread_mutex_unlock(&g.lock);
    return rv;
}

/* ---- signing ----------------------------------------------------------- */

static bool fault_due(const struct session *s, enum fault_kind k,
                      unsigned long ordinal)
{
    return s->tok->f[k].on && ordinal >= s->tok->f[k].after;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The private key labelled with fault KIND's label= on session S. */
static CK_RV evil_lookup(struct session *s, enum fault_kind kind,
                         CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    const char *label = s->tok->f[kind].label;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv;

    rv = g.real->C_FindObjectsInit(s->h, tmpl, 2);
    if (rv != CKR_OK)
        return rv;
    rv = g.real->C_FindObjects(s->h, found, 2, &n);
    g.real->C_FindObjectsFinal(s->h);
    if (rv != CKR_OK)
        return rv;
    if (n != 1) {
        fprintf(stderr, "zgshim: token %s: %s private key labelled \"%s\"\n",
                s->tok->label, n ? "more than one" : "no", label);
        return CKR_GENERAL_ERROR;
    }
    *out = found[0];
    return CKR_OK;
}

/* The swapkey key, found once per session on that session. */
static CK_RV evil_find(struct session *s)
{
    CK_RV rv;

    if (s->have_evil)
        return CKR_OK;
    rv = evil_lookup(s, FAULT_SWAPKEY, &s->evil);
    s->have_evil = rv == CKR_OK;
    return rv;
}

/* stuck: a login that does not come back (for DELAY_MAX_MS). */
static CK_RV shim_Login(CK_SESSION_HANDLE h, CK_USER_TYPE type,
                        CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    struct session *s = session_find(h);

    if (s && s->tok->f[FAULT_STUCK].on)
        sleep_ms(DELAY_MAX_MS);
    return g.real->C_Login(h, type, pin, len);
}

/* nocopy: refuse as for CKA_COPYABLE false; badcopy: copy the evil key. */
static CK_RV shim_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                             CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
                             CK_OBJECT_HANDLE_PTR out)
{
    struct session *s = session_find(h);
    CK_RV rv;

    if (s && s->tok->f[FAULT_NOCOPY].on)
        return CKR_ACTION_PROHIBITED;
    if (s && s->tok->f[FAULT_BADCOPY].on) {
        rv = evil_lookup(s, FAULT_BADCOPY, &obj);
        if (rv != CKR_OK)
            return rv;
    }
    return g.real->C_CopyObject(h, obj, tmpl, n, out);
}

/* swapkey: sign the same data again with the evil key and the mechanism of
 * the last C_SignInit, into the caller's buffer of cap bytes. */
static CK_RV resign(struct session *s, CK_BYTE_PTR data, CK_ULONG len,
                    bool multipart, CK_BYTE_PTR sig, CK_ULONG cap,
                    CK_ULONG_PTR siglen)
{
    CK_RV rv;

    if (!s->mech_ok) {
        fprintf(stderr, "zgshim: swapkey: mechanism parameter too large\n");
        return CKR_GENERAL_ERROR;
    }
    rv = evil_find(s);
    if (rv == CKR_OK)
        rv = g.real->C_SignInit(s->h, &s->mech, s->evil);
    if (rv != CKR_OK)
        return rv;
    if (multipart) {
        if (s->len > 0)
            rv = g.real->C_SignUpdate(s->h, s->buf, s->len);
        if (rv == CKR_OK)
            rv = g.real->C_SignFinal(s->h, sig, &cap);
    } else {
        rv = g.real->C_Sign(s->h, data, len, sig, &cap);
    }
    if (rv == CKR_OK)
        *siglen = cap;
    return rv;
}

/* Runs after the real module made a signature: number it, then apply the
 * token's faults in a fixed order. */
static CK_RV signed_hook(struct session *s, CK_BYTE_PTR data, CK_ULONG len,
                         bool multipart, CK_BYTE_PTR sig, CK_ULONG cap,
                         CK_ULONG_PTR siglen)
{
    unsigned long n = atomic_fetch_add(&s->tok->count, 1);
    CK_RV rv;

    if (fault_due(s, FAULT_EXIT, n))
        _exit(EXIT_STATUS);
    if (fault_due(s, FAULT_DELAY, n))
        sleep_ms(s->tok->f[FAULT_DELAY].ms);
    if (fault_due(s, FAULT_LOSESESSION, n)) {
        s->lost = true;
        return CKR_SESSION_HANDLE_INVALID;
    }
    if (fault_due(s, FAULT_DEVERROR, n))
        return CKR_DEVICE_ERROR;
    if (fault_due(s, FAULT_SWAPKEY, n)) {
        rv = resign(s, data, len, multipart, sig, cap, siglen);
        if (rv != CKR_OK)
            return rv;
    }
    if (fault_due(s, FAULT_FLIPBIT, n) && *siglen > 0)
        sig[*siglen - 1] ^= 0x01;
    return CKR_OK;
}

static CK_RV shim_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech,
                           CK_OBJECT_HANDLE key)
{
    struct session *s = session_find(h);
    CK_RV rv;

    if (!s)
        return g.real->C_SignInit(h, mech, key);
    if (s->lost)
        return CKR_SESSION_HANDLE_INVALID;
    if (s->tok->f[FAULT_DEVERROR].on &&
        atomic_load(&s->tok->count) >= s->tok->f[FAULT_DEVERROR].after)
        return CKR_DEVICE_ERROR;
    rv = g.real->C_SignInit(h, mech, key);
    if (rv != CKR_OK)
        return rv;
    s->len = 0;
    s->mech_ok = mech && mech->ulParameterLen <= PARAM_MAX &&
                 (mech->pParameter || !mech->ulParameterLen);
    if (s->mech_ok) {
        s->mech = *mech;
        if (mech->ulParameterLen) {
            memcpy(s->param, mech->pParameter, mech->ulParameterLen);
            s->mech.pParameter = s->param;
        }
    }
    return CKR_OK;
}

static CK_RV shim_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len,
                       CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
    struct session *s = session_find(h);
    CK_ULONG cap;
    CK_RV rv;

    if (!s)
        return g.real->C_Sign(h, data, len, sig, siglen);
    if (s->lost)
        return CKR_SESSION_HANDLE_INVALID;
    /* Size query (PKCS#11 2.40 §5.2): no signature, nothing to count. */
    if (!sig || !siglen)
        return g.real->C_Sign(h, data, len, sig, siglen);
    cap = *siglen;
    rv = g.real->C_Sign(h, data, len, sig, siglen);
    if (rv != CKR_OK)
        return rv;
    return signed_hook(s, data, len, false, sig, cap, siglen);
}

static CK_RV shim_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part,
                             CK_ULONG len)
{
    struct session *s = session_find(h);

    if (!s)
        return g.real->C_SignUpdate(h, part, len);
    if (s->lost)
        return CKR_SESSION_HANDLE_INVALID;
    if (s->tok->f[FAULT_SWAPKEY].on && len > 0) {
        /* Keep the data: swapkey replays it with the evil key. */
        if (s->len + len > s->cap) {
            size_t cap = (s->len + len) * 2;
            unsigned char *p = realloc(s->buf, cap);
            if (!p)
                return CKR_HOST_MEMORY;
            s->buf = p;
            s->cap = cap;
        }
        memcpy(s->buf + s->len, part, len);
        s->len += len;
    }
    return g.real->C_SignUpdate(h, part, len);
}

static CK_RV shim_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig,
                            CK_ULONG_PTR siglen)
{
    struct session *s = session_find(h);
    CK_ULONG cap;
    CK_RV rv;

    if (!s)
        return g.real->C_SignFinal(h, sig, siglen);
    if (s->lost)
        return CKR_SESSION_HANDLE_INVALID;
    if (!sig || !siglen)
        return g.real->C_SignFinal(h, sig, siglen);
    cap = *siglen;
    rv = g.real->C_SignFinal(h, sig, siglen);
    if (rv != CKR_OK)
        return rv;
    return signed_hook(s, NULL, 0, true, sig, cap, siglen);
}

/* ---- entry point ------------------------------------------------------- */

static CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

static void load_real(void)
{
    const char *path = getenv("ZG_SHIM_MODULE");
    CK_C_GetFunctionList get;
    void *dl;

    g.load_rv = CKR_GENERAL_ERROR;
    if (!path || !*path)
        path = DEFAULT_MODULE;
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "zgshim: cannot load %s: %s\n", path, dlerror());
        return;
    }
    /* Kept loaded for the life of the process: our list points into it. */
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    if (!get || get(&g.real) != CKR_OK || !g.real) {
        fprintf(stderr, "zgshim: %s: no usable C_GetFunctionList\n", path);
        dlclose(dl);
        return;
    }
    g.list = *g.real;
    g.list.C_GetFunctionList = shim_GetFunctionList;
    g.list.C_Initialize = shim_Initialize;
    g.list.C_Finalize = shim_Finalize;
    g.list.C_OpenSession = shim_OpenSession;
    g.list.C_CloseSession = shim_CloseSession;
    g.list.C_CloseAllSessions = shim_CloseAllSessions;
    g.list.C_SignInit = shim_SignInit;
    g.list.C_Sign = shim_Sign;
    g.list.C_SignUpdate = shim_SignUpdate;
    g.list.C_SignFinal = shim_SignFinal;
    g.list.C_CopyObject = shim_CopyObject;
    g.list.C_Login = shim_Login;
    g.load_rv = CKR_OK;
}

static CK_RV shim_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&g.once, load_real);
    if (g.load_rv != CKR_OK)
        return g.load_rv;
    *out = &g.list;
    return CKR_OK;
}

SHIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    return shim_GetFunctionList(out);
}
