/*
 * hsm/token.c - open a set of HSMs named by RFC 7512 URIs.
 *
 * One libp11 PKCS11_CTX per module path (libp11 calls C_Initialize with
 * CKF_OS_LOCKING_OK), tokens selected by label and/or serial (and
 * manufacturer/model if given), never by slot index; a URI matching no
 * token or more than one is refused, and so is one token named twice.
 * libp11 opens a read/write session and logs in; the same module is then
 * reached raw (dlopen + C_GetFunctionList) for what libp11 0.4.12 lacks.
 * Traps (HSM-NOTES.md): nothing here asks libp11 for a session of another
 * mode later (PKCS11_open_session would C_CloseAllSessions and kill raw
 * sessions), the raw side never calls C_Finalize, and raw sessions close
 * before the libp11 context unloads the module.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libp11.h>

#include "hsm/internal.h"

static void module_close(struct hsm_module *m)
{
    if (m->p11ctx != NULL) {
        PKCS11_CTX_unload(m->p11ctx);
        PKCS11_CTX_free(m->p11ctx);
    }
    if (m->dl != NULL)
        dlclose(m->dl);
    free(m->path);
}

void hsm_set_free(struct hsm_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        struct hsm_token *t = &set->tok[i];
        if (t->mod != NULL && t->mod->f != NULL && t->admin != 0)
            t->mod->f->C_CloseSession(t->admin);
    }
    for (size_t i = 0; i < set->nmod; i++) {
        struct hsm_module *m = &set->mods[i];
        if (m->p11ctx != NULL && set->mod_slots != NULL &&
            set->mod_slots[i] != NULL)
            PKCS11_release_all_slots(m->p11ctx, set->mod_slots[i],
                                     set->mod_nslots[i]);
        module_close(m);
    }
    for (size_t i = 0; set->uri != NULL && i < set->n; i++)
        if (set->uri[i] != NULL) {
            OPENSSL_cleanse(set->uri[i], strlen(set->uri[i]));
            free(set->uri[i]);
        }
    free(set->uri);
    free(set->mod_slots);
    free(set->mod_nslots);
    free(set->mods);
    free(set->tok);
    free(set);
}

size_t hsm_set_count(const struct hsm_set *set) { return set->n; }

const char *hsm_set_token(const struct hsm_set *set, size_t i)
{
    return i < set->n ? set->tok[i].label : NULL;
}

static int module_load(struct hsm_module *m, const char *path,
                       hsm_diag_t *diag)
{
    CK_C_GetFunctionList getf;
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    if ((m->path = strdup(path)) == NULL)
        return -ENOMEM;
    /* Our own handle first: a module that does not load is reported in
     * one line here, before libp11 prints its own complaint. */
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        const char *e = dlerror();
        diag_set(diag, "cannot load PKCS#11 module %s", e != NULL ? e : path);
        return HSM_EMODULE;
    }
    getf = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (getf == NULL || getf(&m->f) != CKR_OK || m->f == NULL) {
        diag_set(diag, "PKCS#11 module %s has no C_GetFunctionList", path);
        return HSM_EMODULE;
    }
    m->p11ctx = PKCS11_CTX_new();
    if (m->p11ctx == NULL)
        return -ENOMEM;
    ERR_clear_error();
    if (PKCS11_CTX_load(m->p11ctx, path) != 0) {
        ERR_clear_error();
        PKCS11_CTX_free(m->p11ctx);
        m->p11ctx = NULL;
        diag_set(diag, "cannot initialise PKCS#11 module %s", path);
        return HSM_EMODULE;
    }
    /* Already initialised by libp11 in this process: expected. */
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        diag_set(diag, "PKCS#11 module %s: C_Initialize: %s", path,
                 hsm_ckr_name(rv));
        return HSM_EMODULE;
    }
    return 0;
}

/* The module for PATH, loaded once per set. */
static int module_get(struct hsm_set *set, const char *path, size_t *idx,
                      hsm_diag_t *diag)
{
    PKCS11_SLOT *slots = NULL;
    unsigned int nslots = 0;
    char *real = realpath(path, NULL);
    int rc;
    /* One context per module file, however the path spells it. */
    if (real != NULL)
        path = real;
    for (size_t i = 0; i < set->nmod; i++)
        if (strcmp(set->mods[i].path, path) == 0) {
            *idx = i;
            free(real);
            return 0;
        }
    *idx = set->nmod++;
    rc = module_load(&set->mods[*idx], path, diag);
    free(real);
    if (rc != 0)
        return rc;
    if (PKCS11_enumerate_slots(set->mods[*idx].p11ctx, &slots, &nslots)
        != 0) {
        ERR_clear_error();
        diag_set(diag, "PKCS#11 module %s: cannot list slots",
                 set->mods[*idx].path);
        return HSM_EDEVICE;
    }
    set->mod_slots[*idx] = slots;
    set->mod_nslots[*idx] = nslots;
    return 0;
}

static bool token_matches(const PKCS11_TOKEN *t, const hsm_uri_t *u)
{
    if (t == NULL || !t->initialized)
        return false;
    if (u->token != NULL && strcmp(t->label, u->token) != 0)
        return false;
    if (u->serial != NULL && strcmp(t->serialnr, u->serial) != 0)
        return false;
    if (u->manufacturer != NULL && strcmp(t->manufacturer, u->manufacturer))
        return false;
    if (u->model != NULL && strcmp(t->model, u->model) != 0)
        return false;
    return true;
}

static const char *uri_name(const hsm_uri_t *u)
{
    return u->token != NULL ? u->token : u->serial;
}

static int token_open(struct hsm_set *set, size_t i, const hsm_uri_t *u,
                      hsm_diag_t *diag)
{
    struct hsm_token *t = &set->tok[i];
    PKCS11_SLOT *slots, *found = NULL;
    size_t m;
    unsigned int nslots, matches = 0;
    CK_RV rv;
    int rc = module_get(set, u->module_path, &m, diag);

    if (rc != 0) {
        char msg[sizeof(diag->msg)];
        if (diag != NULL) {
            snprintf(msg, sizeof(msg), "%s", diag->msg);
            diag_set(diag, "HSM %zu: %s", i + 1, msg);
        }
        return rc;
    }
    t->mod = &set->mods[m];
    slots = set->mod_slots[m];
    nslots = set->mod_nslots[m];
    for (unsigned int s = 0; s < nslots; s++)
        if (token_matches(slots[s].token, u)) {
            found = &slots[s];
            matches++;
        }
    if (matches == 0) {
        diag_set(diag, "HSM %zu: no token matches \"%s\" in %s", i + 1,
                 uri_name(u), u->module_path);
        return HSM_ENOTOKEN;
    }
    if (matches > 1) {
        diag_set(diag, "HSM %zu: %u tokens match \"%s\": add serial=",
                 i + 1, matches, uri_name(u));
        return HSM_EAMBIGUOUS;
    }
    t->slot = found;
    t->slot_id = PKCS11_get_slotid_from_slot(found);
    snprintf(t->label, sizeof(t->label), "%s", found->token->label);
    snprintf(t->serial, sizeof(t->serial), "%s", found->token->serialnr);
    for (size_t j = 0; j < i; j++)
        if (set->tok[j].mod == t->mod && set->tok[j].slot_id == t->slot_id) {
            diag_set(diag, "HSM %zu and HSM %zu are the same token (%s)",
                     j + 1, i + 1, t->label);
            return HSM_EAMBIGUOUS;
        }
    ERR_clear_error();
    if (PKCS11_open_session(found, 1) != 0) {
        ERR_clear_error();
        diag_set(diag, "HSM %zu (token %s): cannot open a session", i + 1,
                 t->label);
        return HSM_EDEVICE;
    }
    if (PKCS11_login(found, 0, u->pin) != 0) {
        ERR_clear_error();
        diag_set(diag, "HSM %zu (token %s): login refused (wrong PIN?)",
                 i + 1, t->label);
        return HSM_ELOGIN;
    }
    rv = t->mod->f->C_OpenSession(t->slot_id,
                                  CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                  NULL, &t->admin);
    if (rv != CKR_OK) {
        t->admin = 0;
        diag_set(diag, "HSM %zu (token %s): C_OpenSession: %s", i + 1,
                 t->label, hsm_ckr_name(rv));
        return HSM_EDEVICE;
    }
    return 0;
}

int hsm_set_open(struct hsm_set **out, const char *const *uris, size_t n,
                 hsm_diag_t *diag)
{
    struct hsm_set *set;
    int rc = 0;

    if (n == 0) {
        diag_set(diag, "no HSM given (--hsm URI or --hsm-list FILE)");
        return HSM_ENOTOKEN;
    }
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return -ENOMEM;
    set->mods = calloc(n, sizeof(*set->mods));
    set->tok = calloc(n, sizeof(*set->tok));
    set->mod_slots = calloc(n, sizeof(*set->mod_slots));
    set->mod_nslots = calloc(n, sizeof(*set->mod_nslots));
    set->uri = calloc(n, sizeof(*set->uri));
    if (set->mods == NULL || set->tok == NULL || set->mod_slots == NULL ||
        set->mod_nslots == NULL || set->uri == NULL) {
        hsm_set_free(set);
        return -ENOMEM;
    }
    set->n = n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        hsm_uri_t *u = NULL;
        if ((set->uri[i] = strdup(uris[i])) == NULL) {
            rc = -ENOMEM;
            break;
        }
        rc = hsm_uri_parse(&u, uris[i], diag);
        if (rc != 0) {
            char msg[sizeof(diag->msg)];
            if (diag != NULL) {
                snprintf(msg, sizeof(msg), "%s", diag->msg);
                diag_set(diag, "HSM %zu: %s", i + 1, msg);
            }
            break;
        }
        rc = token_open(set, i, u, diag);
        hsm_uri_free(u);
    }
    if (rc != 0) {
        hsm_set_free(set);
        return rc;
    }
    *out = set;
    return 0;
}
