/*
 * tests/shim/shimsign.c - test driver: many signatures in one process
 * through a PKCS#11 module loaded by path with dlopen (raw PKCS#11, the
 * way hsm/ reaches keys that libp11 cannot handle).
 *
 *   shimsign MODULE TOKEN KEYLABEL MECH PINFILE INFILE OUTDIR COUNT THREADS
 *
 * MECH: ecdsa (SHA-256 on the host, CKM_ECDSA on the token, written out as
 * DER), rsa (CKM_SHA256_RSA_PKCS, one C_Sign) or rsa-multi (the same with
 * two C_SignUpdate and C_SignFinal).  Every signature first asks for its
 * length (the NULL-buffer convention), then signs.  COUNT signatures are
 * shared among THREADS threads, each with its own session, initialised
 * with CKF_OS_LOCKING_OK.  Signature i goes to OUTDIR/sig.i; stdout gets
 * one line per signature, "i ok" or "i rv=0xHEX", in the order they
 * finish.  The PIN is read from PINFILE.  Exit 0 if the run happened
 * (whatever the signatures' fate), 2 on a set-up error.
 *
 * It does not verify anything: the tests do that with openssl.
 */
#include <p11-kit/pkcs11.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mech_kind { MECH_ECDSA, MECH_RSA, MECH_RSA_MULTI };

struct run {
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    const char *keylabel;
    enum mech_kind mech;
    unsigned char *data;
    size_t len;
    const char *outdir;
    unsigned long count;
    atomic_ulong next;
    pthread_mutex_t out_lock;
};

static int fail(const char *what, CK_RV rv)
{
    fprintf(stderr, "shimsign: %s: rv=0x%lx\n", what, (unsigned long)rv);
    return 2;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
        fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, fp) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    return buf;
}

/* r||s (RFC 6605 form, as CKM_ECDSA returns it) to DER for openssl. */
static int write_sig(const struct run *r, unsigned long i,
                     const unsigned char *sig, size_t len)
{
    char path[4096];
    unsigned char *der = NULL;
    ECDSA_SIG *es = NULL;
    FILE *fp = NULL;
    int n = 0, ret = -1;

    snprintf(path, sizeof path, "%s/sig.%lu", r->outdir, i);
    if (r->mech == MECH_ECDSA) {
        BIGNUM *br = BN_bin2bn(sig, (int)(len / 2), NULL);
        BIGNUM *bs = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
        es = ECDSA_SIG_new();
        if (!br || !bs || !es || !ECDSA_SIG_set0(es, br, bs)) {
            BN_free(br);
            BN_free(bs);
            goto out;
        }
        n = i2d_ECDSA_SIG(es, &der);
        if (n <= 0)
            goto out;
        sig = der;
        len = (size_t)n;
    }
    fp = fopen(path, "wb");
    if (fp && fwrite(sig, 1, len, fp) == len)
        ret = 0;
out:
    if (fp && fclose(fp) != 0)
        ret = -1;
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ret;
}

static CK_RV sign_once(struct run *r, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key,
                       unsigned char *sig, CK_ULONG *siglen)
{
    CK_MECHANISM m = {r->mech == MECH_ECDSA ? CKM_ECDSA : CKM_SHA256_RSA_PKCS,
                      NULL, 0};
    unsigned char md[32];
    unsigned int mdlen = 0;
    CK_ULONG need = 0, half = r->len / 2;
    CK_RV rv;

    rv = r->p11->C_SignInit(h, &m, key);
    if (rv != CKR_OK)
        return rv;
    if (r->mech == MECH_RSA_MULTI) {
        rv = r->p11->C_SignUpdate(h, r->data, half);
        if (rv == CKR_OK)
            rv = r->p11->C_SignUpdate(h, r->data + half, r->len - half);
        if (rv == CKR_OK)
            rv = r->p11->C_SignFinal(h, NULL, &need);
        if (rv == CKR_OK && need > *siglen)
            rv = CKR_BUFFER_TOO_SMALL;
        if (rv == CKR_OK)
            rv = r->p11->C_SignFinal(h, sig, siglen);
        return rv;
    }
    if (r->mech == MECH_ECDSA) {
        if (!EVP_Digest(r->data, r->len, md, &mdlen, EVP_sha256(), NULL))
            return CKR_GENERAL_ERROR;
        rv = r->p11->C_Sign(h, md, mdlen, NULL, &need);
        if (rv == CKR_OK && need > *siglen)
            rv = CKR_BUFFER_TOO_SMALL;
        if (rv == CKR_OK)
            rv = r->p11->C_Sign(h, md, mdlen, sig, siglen);
        return rv;
    }
    rv = r->p11->C_Sign(h, r->data, r->len, NULL, &need);
    if (rv == CKR_OK && need > *siglen)
        rv = CKR_BUFFER_TOO_SMALL;
    if (rv == CKR_OK)
        rv = r->p11->C_Sign(h, r->data, r->len, sig, siglen);
    return rv;
}

static CK_RV find_key(struct run *r, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)r->keylabel, strlen(r->keylabel)},
    };
    CK_ULONG n = 0;
    CK_RV rv = r->p11->C_FindObjectsInit(h, t, 2);

    if (rv != CKR_OK)
        return rv;
    rv = r->p11->C_FindObjects(h, key, 1, &n);
    r->p11->C_FindObjectsFinal(h);
    if (rv == CKR_OK && n != 1)
        rv = CKR_KEY_HANDLE_INVALID;
    return rv;
}

static void *worker(void *arg)
{
    struct run *r = arg;
    CK_SESSION_HANDLE h;
    CK_OBJECT_HANDLE key;
    unsigned char sig[1024];
    unsigned long i;
    CK_RV rv;

    rv = r->p11->C_OpenSession(r->slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
    if (rv == CKR_OK)
        rv = find_key(r, h, &key);
    if (rv != CKR_OK) {
        fail("session or key", rv);
        return (void *)1;
    }
    while ((i = atomic_fetch_add(&r->next, 1)) < r->count) {
        CK_ULONG siglen = sizeof sig;
        rv = sign_once(r, h, key, sig, &siglen);
        if (rv == CKR_OK && write_sig(r, i, sig, siglen) < 0)
            rv = CKR_GENERAL_ERROR;
        pthread_mutex_lock(&r->out_lock);
        if (rv == CKR_OK)
            printf("%lu ok\n", i);
        else
            printf("%lu rv=0x%lx\n", i, (unsigned long)rv);
        pthread_mutex_unlock(&r->out_lock);
    }
    r->p11->C_CloseSession(h);
    return NULL;
}

static int find_slot(CK_FUNCTION_LIST *p11, const char *label, CK_SLOT_ID *out)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO ti;
    size_t len = strlen(label);

    if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK || len > 32)
            continue;
        if (memcmp(ti.label, label, len) == 0 &&
            (len == 32 || ti.label[len] == ' ')) {
            *out = slots[i];
            return 0;
        }
    }
    return -1;
}

/* Loads the module, logs in once (login is per token, for all sessions),
 * then lets the workers sign.  Returns the exit status. */
static int run(struct run *r, const char *module, const char *token,
               const char *pinfile, unsigned long threads)
{
    CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
    CK_C_GetFunctionList get;
    CK_SESSION_HANDLE login = CK_INVALID_HANDLE;
    pthread_t tid[16];
    unsigned long started = 0;
    unsigned char *pin = NULL;
    size_t pinlen = 0;
    void *dl = NULL;
    int ret = 2;
    CK_RV rv = CKR_OK;

    dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "shimsign: %s\n", dlerror());
        return 2;
    }
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    if (!get || (rv = get(&r->p11)) != CKR_OK) {
        fail("C_GetFunctionList", get ? rv : 0);
        goto out;
    }
    rv = r->p11->C_Initialize(&ia);
    if (rv != CKR_OK) {
        fail("C_Initialize", rv);
        goto out;
    }
    pin = read_file(pinfile, &pinlen);
    while (pin && pinlen > 0 && (pin[pinlen - 1] == '\n'))
        pinlen--;
    if (!pin || find_slot(r->p11, token, &r->slot) < 0) {
        fprintf(stderr, "shimsign: no PIN file or no token %s\n", token);
        goto fin;
    }
    rv = r->p11->C_OpenSession(r->slot, CKF_SERIAL_SESSION, NULL, NULL, &login);
    if (rv == CKR_OK)
        rv = r->p11->C_Login(login, CKU_USER, pin, pinlen);
    if (rv != CKR_OK) {
        fail("log in", rv);
        goto fin;
    }
    ret = 0;
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, worker, r) != 0) {
            ret = 2;
            break;
        }
    }
    for (unsigned long i = 0; i < started; i++) {
        void *res = NULL;
        pthread_join(tid[i], &res);
        if (res)
            ret = 2;
    }
fin:
    if (login != CK_INVALID_HANDLE)
        r->p11->C_CloseSession(login);
    r->p11->C_Finalize(NULL);
out:
    if (pin) {
        memset(pin, 0, pinlen);
        free(pin);
    }
    dlclose(dl);
    return ret;
}

int main(int argc, char **argv)
{
    struct run r = {.out_lock = PTHREAD_MUTEX_INITIALIZER};
    unsigned long threads;
    char *end;
    int ret;

    if (argc != 10) {
        fprintf(stderr, "usage: shimsign MODULE TOKEN KEYLABEL MECH PINFILE "
                        "INFILE OUTDIR COUNT THREADS\n");
        return 2;
    }
    r.keylabel = argv[3];
    if (strcmp(argv[4], "ecdsa") == 0)
        r.mech = MECH_ECDSA;
    else if (strcmp(argv[4], "rsa") == 0)
        r.mech = MECH_RSA;
    else if (strcmp(argv[4], "rsa-multi") == 0)
        r.mech = MECH_RSA_MULTI;
    else {
        fprintf(stderr, "shimsign: unknown mechanism %s\n", argv[4]);
        return 2;
    }
    r.outdir = argv[7];
    r.count = strtoul(argv[8], &end, 10);
    threads = strtoul(argv[9], &end, 10);
    if (*end || threads < 1 || threads > 16) {
        fprintf(stderr, "shimsign: THREADS must be 1..16\n");
        return 2;
    }
    atomic_init(&r.next, 0);
    r.data = read_file(argv[6], &r.len);
    if (!r.data) {
        fprintf(stderr, "shimsign: cannot read %s\n", argv[6]);
        return 2;
    }
    ret = run(&r, argv[1], argv[2], argv[5], threads);
    free(r.data);
    return ret;
}
