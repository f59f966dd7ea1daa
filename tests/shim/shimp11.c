/*
 * tests/shim/shimp11.c - test driver: many signatures in one process
 * through libp11 0.4.12 (the way hsm/ signs), with the module given by
 * path, as zonehsm/zonesign do with module-path= in a PKCS#11 URI.
 *
 *   shimp11 MODULE TOKEN KEYLABEL PINFILE INFILE OUTDIR COUNT THREADS
 *
 * Signs INFILE COUNT times with EVP_DigestSign (SHA-256; ECDSA comes back
 * DER, RSA as PKCS#1 v1.5), shared among THREADS threads on one EVP_PKEY,
 * each with its own EVP_MD_CTX (safe in libp11: HSM-NOTES.md).  Signature
 * i goes to OUTDIR/sig.i; stdout gets "i ok" or "i err" per signature in
 * the order they finish.  Exit 0 if the run happened, 2 on a set-up error.
 * It verifies nothing: the tests do that with openssl.
 */
#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
    EVP_PKEY *pkey;
    unsigned char *data;
    size_t len;
    const char *outdir;
    unsigned long count;
    atomic_ulong next;
    pthread_mutex_t out_lock;
};

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
        fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, fp) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    return buf;
}

static int sign_one(struct run *r, unsigned long i)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    char path[4096];
    FILE *fp = NULL;
    int ret = -1;

    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, r->pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen, r->data, r->len) != 1)
        goto out;
    snprintf(path, sizeof path, "%s/sig.%lu", r->outdir, i);
    fp = fopen(path, "wb");
    if (fp && fwrite(sig, 1, siglen, fp) == siglen)
        ret = 0;
    if (fp && fclose(fp) != 0)
        ret = -1;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    return ret;
}

static void *worker(void *arg)
{
    struct run *r = arg;
    unsigned long i;

    while ((i = atomic_fetch_add(&r->next, 1)) < r->count) {
        int rc = sign_one(r, i);
        pthread_mutex_lock(&r->out_lock);
        printf("%lu %s\n", i, rc == 0 ? "ok" : "err");
        pthread_mutex_unlock(&r->out_lock);
    }
    return NULL;
}

static PKCS11_KEY *find_key(PKCS11_SLOT *slot, const char *label)
{
    PKCS11_KEY *keys = NULL;
    unsigned int n = 0;

    if (PKCS11_enumerate_keys(slot->token, &keys, &n) < 0)
        return NULL;
    for (unsigned int i = 0; i < n; i++)
        if (keys[i].label && strcmp(keys[i].label, label) == 0)
            return &keys[i];
    return NULL;
}

static int run(struct run *r, const char *module, const char *token,
               const char *keylabel, char *pin, unsigned long threads)
{
    PKCS11_CTX *ctx = PKCS11_CTX_new();
    PKCS11_SLOT *slots = NULL, *slot = NULL;
    PKCS11_KEY *key;
    unsigned int nslots = 0;
    unsigned long started = 0;
    pthread_t tid[16];
    int ret = 2;

    if (!ctx || PKCS11_CTX_load(ctx, module) < 0) {
        fprintf(stderr, "shimp11: cannot load %s\n", module);
        PKCS11_CTX_free(ctx);
        return 2;
    }
    if (PKCS11_enumerate_slots(ctx, &slots, &nslots) < 0)
        goto out;
    for (unsigned int i = 0; i < nslots; i++)
        if (slots[i].token && strcmp(slots[i].token->label, token) == 0)
            slot = &slots[i];
    if (!slot || PKCS11_open_session(slot, 0) < 0 ||
        PKCS11_login(slot, 0, pin) < 0 || !(key = find_key(slot, keylabel)) ||
        !(r->pkey = PKCS11_get_private_key(key))) {
        fprintf(stderr, "shimp11: token %s or key %s unusable\n", token,
                keylabel);
        goto out;
    }
    ret = 0;
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, worker, r) != 0) {
            ret = 2;
            break;
        }
    }
    for (unsigned long i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
out:
    EVP_PKEY_free(r->pkey);
    if (slots)
        PKCS11_release_all_slots(ctx, slots, nslots);
    PKCS11_CTX_unload(ctx);
    PKCS11_CTX_free(ctx);
    return ret;
}

int main(int argc, char **argv)
{
    struct run r = {.out_lock = PTHREAD_MUTEX_INITIALIZER};
    unsigned long threads;
    size_t pinlen = 0;
    char *pin;
    char *end;
    int ret;

    if (argc != 9) {
        fprintf(stderr, "usage: shimp11 MODULE TOKEN KEYLABEL PINFILE INFILE "
                        "OUTDIR COUNT THREADS\n");
        return 2;
    }
    r.outdir = argv[6];
    r.count = strtoul(argv[7], &end, 10);
    threads = strtoul(argv[8], &end, 10);
    if (*end || threads < 1 || threads > 16) {
        fprintf(stderr, "shimp11: THREADS must be 1..16\n");
        return 2;
    }
    atomic_init(&r.next, 0);
    pin = (char *)read_all(argv[4], &pinlen);
    r.data = read_all(argv[5], &r.len);
    if (!pin || !r.data) {
        fprintf(stderr, "shimp11: cannot read the PIN or data file\n");
        free(pin);
        free(r.data);
        return 2;
    }
    pin[strcspn(pin, "\n")] = '\0';
    ret = run(&r, argv[1], argv[2], argv[3], pin, threads);
    OPENSSL_cleanse(pin, pinlen);
    free(pin);
    free(r.data);
    return ret;
}
