/*
 * signer/internal.h - struct bodies and helpers shared by signer/'s files.
 *
 * The zone is one growable byte arena of record blobs plus one array of
 * 8-byte arena offsets sorted in canonical order (RFC 4034 6.1, 6.3).
 * A blob is
 *     u16 klen, key[klen]     canonical sort key of the owner (below)
 *     u16 type, u32 ttl, u32 line, u8 file, u8 flags, u16 rdlen, rdata
 * so the fixed per-record cost is 8 (index) + 16 (header) bytes plus the
 * owner and RDATA wire bytes.  Owner names are kept only as their sort
 * key: labels from the root down, each lowercased (RFC 4034 6.2) with
 * 0x00 -> 01 01 and 0x01 -> 01 02 escaped and followed by a 0x00
 * separator, so memcmp on keys is canonical name order and "key A is a
 * prefix of key B" is "A is B or an ancestor of B".  RDATA is stored in
 * canonical form (names of the RFC 4034 6.2 types lowercased).
 */
#ifndef ZONEGATE_SIGNER_INTERNAL_H
#define ZONEGATE_SIGNER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "signer/signer.h"

#define T_A 1
#define T_NS 2
#define T_CNAME 5
#define T_SOA 6
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28
#define T_DNAME 39
#define T_DS 43
#define T_RRSIG 46
#define T_NSEC 47
#define T_DNSKEY 48
#define T_NSEC3 50
#define T_NSEC3PARAM 51
#define T_CDS 59
#define T_CDNSKEY 60

#define KEY_MAX 512 /* sort key of a 255-octet name, escapes included */

/* Blob flags. */
#define RF_SIGN 0x01   /* first record of an RRset to be signed */
#define RF_GEN 0x02    /* made by the signer (DNSKEY, NSEC3, ...) */

typedef struct arena {
    uint8_t *buf;
    size_t len, cap;
} arena_t;

/* [P, P + N)'s whole pages made present and writable at once, before they
 * are written: one call instead of a page fault per page as they
 * are first touched, which on a patched run also waited
 * behind the threads that unmap large mappings meanwhile. */
void mem_populate(void *p, size_t n);
int arena_reserve(arena_t *a, size_t more);
int arena_put(arena_t *a, const void *p, size_t n);
void arena_free(arena_t *a);

/* ZONESIGN_TRACE=1: one line on stderr with wall and process CPU seconds
 * since the first call, and the calling thread's CPU seconds (for
 * measuring the phases; off by default). */
void trace_mark(const char *what);

/* fsyncs the directory holding PATH (after a rename into it). */
int writer_dir_fsync(const char *path);

/* reap.c: files a run replaces, let go of on threads (see there).
 * reap_hold before the rename or unlink that replaces PATH; reap_start
 * after it; reap_join before the run returns. */
#define REAP_MAX 8
typedef struct reaper {
    int fd[REAP_MAX];
    pthread_t th[REAP_MAX];
    bool th_ok[REAP_MAX];
    int n, started;
} reaper_t;

void reap_hold(reaper_t *r, const char *path);
/* PATH unlinked, its inode held first (freed when R lets go). */
void reap_unlink(reaper_t *r, const char *path);
/* drops the page cache of the files held and not let go of yet (their
 * content stays as it is), so that what is left to free is their blocks */
void reap_uncache(reaper_t *r);
void reap_start(reaper_t *r);
void reap_join(reaper_t *r);
/* OUT's spare, DIR/.NAME.spare (malloc'd; NULL: no memory). */
char *spare_path(const char *out);
/* SPARE opened to be written over (O_RDWR, its mode set to MODE), when
 * nothing else sees it (see reap.c); else it is removed (freed by R, or
 * at once if R is NULL) and -1 returned. */
int spare_take(const char *spare, mode_t mode, reaper_t *r);
/* The file OUT is written to (mode 0644): SPARE taken unless NO_SPARE,
 * else a new OUT.tmp.XXXXXX; *TMP gets its path (malloc'd).  -1 with
 * errno set if there is none. */
int spare_open(const char *out, const char *spare, bool no_spare,
               reaper_t *r, char **tmp);
/* TMP (written and synced) in place of OUT; the old OUT kept as SPARE
 * if KEEP and it is a regular file with no other link, else freed by R
 * (and a SPARE left from before removed).  TMP may be SPARE itself.  0 or
 * -errno (OUT as it was).  What R holds is let go of by reap_start. */
int spare_commit(const char *tmp, const char *out, const char *spare,
                 bool keep, reaper_t *r);
/* The files beside OUT (OUT.zsc, OUT.zsp) have spares too, SPARE =
 * spare_path(PATH) (made here).  side_open gives the file PATH's next
 * version is written to (mode MODE): SPARE moved to a new temporary name
 * PATH.tmp.XXXXXX (*TMP, malloc'd) unless NO_SPARE, and taken there
 * (spare_take), else a new file there; -1 with errno set if there is
 * none.  side_retire takes PATH's name from the file that has it (before
 * *TMP is renamed to PATH): kept as SPARE if KEEP and it is a regular
 * file with no other link, else freed by R (and, without KEEP, a SPARE
 * left from before removed).  R may be NULL: files are then freed at
 * once. */
int side_open(const char *path, bool no_spare, mode_t mode, reaper_t *r,
              char **tmp);
void side_retire(const char *path, bool keep, reaper_t *r);

typedef struct zone {
    arena_t a;          /* record blobs */
    uint64_t *idx;      /* offsets, canonical order after zone_sort */
    size_t n, cap;
    char **files;       /* names of the files read ($INCLUDE), <= 255 */
    size_t nfiles;
    uint8_t origin[256]; /* wire, lowercase */
    size_t origin_len;
    uint8_t okey[KEY_MAX];
    size_t okey_len;
    unsigned origin_labels;
} zone_t;

/* A record as seen through its blob. */
typedef struct rec {
    const uint8_t *key;
    uint16_t klen;
    uint16_t type;
    uint32_t ttl;
    uint32_t line;
    uint8_t file;
    uint8_t flags;
    uint16_t rdlen;
    const uint8_t *rdata;
    uint64_t off; /* blob offset, for in-place edits */
} rec_t;

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}
static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The record of the blob at P (arena offset OFF). */
static inline void rec_parse(const uint8_t *p, uint64_t off, rec_t *r)
{
    r->off = off;
    r->klen = get16(p);
    r->key = p + 2;
    p += 2 + r->klen;
    r->type = get16(p);
    r->ttl = get32(p + 2);
    r->line = get32(p + 6);
    r->file = p[10];
    r->flags = p[11];
    r->rdlen = get16(p + 12);
    r->rdata = p + 14;
}

static inline void rec_at(const zone_t *z, size_t i, rec_t *r)
{
    rec_parse(z->a.buf + z->idx[i], z->idx[i], r);
}
/* Offset of the flags byte of blob OFF. */
static inline uint8_t *rec_flags_ptr(zone_t *z, uint64_t off)
{
    uint8_t *p = z->a.buf + off;
    return p + 2 + get16(p) + 11;
}

/* zone.c */
int zone_init(zone_t *z, const uint8_t *origin_wire, size_t len);
void zone_free(zone_t *z);
/* Appends a record; OWNER is wire form (any case), RDATA canonical. */
int zone_add(zone_t *z, const uint8_t *owner, size_t olen, uint16_t type,
             uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
             uint32_t line, uint8_t file, uint8_t flags);
/* Appends a record whose owner is given as a sort key. */
int zone_add_key(zone_t *z, const uint8_t *key, size_t klen, uint16_t type,
                 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                 uint8_t flags);
/* The same with the file and line it was read from. */
int zone_add_rec(zone_t *z, const uint8_t *key, size_t klen, uint16_t type,
                 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                 uint32_t line, uint8_t file, uint8_t flags);
/* Records read in parts on several threads (reader.c), kept in bins by
 * the first octet of their owner key below the origin (bin 0: the apex),
 * so that the sort and the lay-out work on one small region at a time
 * instead of reaching across the whole zone at random. */
#define ZONE_BINS 256
typedef struct zone_bins {
    arena_t bin[ZONE_BINS];
    size_t count[ZONE_BINS];
    size_t n;
} zone_bins_t;
/* Appends a record (owner as a sort key; SKIP: the origin's key length). */
int zone_bins_add(zone_bins_t *b, size_t skip, const uint8_t *key,
                  size_t klen, uint16_t type, uint32_t ttl,
                  const uint8_t *rdata, uint16_t rdlen, uint32_t line,
                  uint8_t file, uint8_t flags);
void zone_bins_free(zone_bins_t *b);
/* Z's arena and index replaced by the records of the parts *P[0..NP),
 * sorted (equal records in part order, then in the order added) and laid
 * out in that order, on two threads.  DONE (may be NULL) is called for
 * each bin that holds records, on the thread that laid it out, with the
 * bin's first index and number of records, as soon as they are in place
 * (no name spans two bins). */
int zone_bins_lay_out(zone_t *z, zone_bins_t *const *p, size_t np,
                      void (*done)(void *arg, size_t bin, size_t first,
                                   size_t n),
                      void *arg);
/* Sorts the index in canonical order and lays the arena out in it (so
 * that every later pass reads the arena sequentially); equal records keep
 * their order. */
int zone_sort(zone_t *z);
/* Sorts the index only (the arena may be shared with another view). */
int zone_sort_index(zone_t *z);
/* Z sorted but for its records from N0 on (a few, added): those sorted
 * and merged in (equal records: Z's first). */
int zone_merge_tail(zone_t *z, size_t n0);
/* Merges the sorted index of SRC's records (stored in Z's arena, offsets
 * in IDX) into Z's sorted index. */
int zone_merge(zone_t *z, const uint64_t *idx, size_t n);
int rec_cmp(const rec_t *a, const rec_t *b);
/* End of the run of records with the same owner (and type if BYTYPE). */
size_t zone_run_end(const zone_t *z, size_t i, bool bytype);
/* The same, looking no further than END. */
size_t zone_run_end_in(const zone_t *z, size_t i, size_t end, bool bytype);
/* First index with (key, type) >= the given one. */
size_t zone_lower_bound(const zone_t *z, const uint8_t *key, size_t klen,
                        uint16_t type);

/* name.c: wire names and sort keys. */
#define KEY_BAD ((size_t)-1)
/* Wire name -> sort key; returns key length (0 for the root) or KEY_BAD. */
size_t name_to_key(const uint8_t *wire, size_t wlen, uint8_t *key);
/* Sort key -> lowercase wire name; returns wire length. */
size_t key_to_wire(const uint8_t *key, size_t klen, uint8_t *wire);
/* Number of labels of a wire name (root 0). */
unsigned name_labels(const uint8_t *wire);
size_t name_wire_len(const uint8_t *wire, size_t max);
void name_lower(uint8_t *wire);
/* Presentation form of a wire name into buf (>= 1100 bytes). */
size_t name_to_text(const uint8_t *wire, char *buf);
/* Is key A an ancestor-or-self of key B? */
static inline bool key_under(const uint8_t *a, size_t alen, const uint8_t *b,
                             size_t blen)
{
    return alen <= blen && memcmp(a, b, alen) == 0;
}
/* Number of labels in a key. */
unsigned key_labels(const uint8_t *key, size_t klen);
/* Length of the key of the parent of KEY (one label less). */
size_t key_parent_len(const uint8_t *key, size_t klen);

/* rdata.c: per-type RDATA layout. */
/* Layout string of TYPE or NULL (generic).  Codes in rdata.c. */
const char *rdata_layout(uint16_t type);
/* Lowercases the names in RDATA of the RFC 4034 6.2 types in place;
 * returns 0, or -1 if RDATA does not fit the type's layout. */
int rdata_canonicalize(uint16_t type, uint8_t *rdata, size_t len);
/* Type mnemonic ("A", "TYPE65534"), buf >= 16. */
const char *type_name(uint16_t type, char *buf);

/* nsec3.c */
void nsec3_hash(const uint8_t *wire, size_t wlen, const uint8_t *salt,
                size_t salt_len, uint16_t iterations, uint8_t out[20]);
/* Base32hex (RFC 4648 7), lowercase, no padding; returns length. */
size_t base32hex_encode(const uint8_t *in, size_t len, char *out);
/* In N sorted entries of STRIDE bytes each starting with a 20-octet hash:
 * the index i > 0 of the first entry equal to entry i-1, or 0 if none
 * (RFC 5155 7.1: a collision makes the chain unusable). */
size_t nsec3_find_collision(const uint8_t *base, size_t stride, size_t n);
/* Type bitmap (RFC 4034 4.1.2) of the sorted, unique TYPES. */
size_t type_bitmap(const uint16_t *types, size_t n, uint8_t *out);
/* The same of unique TYPES in any order (sorted in place). */
size_t type_bitmap_of(uint16_t *types, size_t n, uint8_t *out);

/* rrsig.c */
typedef struct rrsig_hdr {
    uint16_t covered;
    uint8_t alg;
    uint8_t labels;
    uint32_t orig_ttl;
    uint32_t expiration;
    uint32_t inception;
    uint16_t keytag;
    const uint8_t *signer; /* wire, lowercase */
    size_t signer_len;
} rrsig_hdr_t;
/* RRSIG RDATA without the signature (RFC 4034 3.1); returns length. */
size_t rrsig_rdata_hdr(const rrsig_hdr_t *h, uint8_t *out);
/* Appends one RR of the RRset in canonical form (RFC 4034 3.1.8.1) to A. */
int rrsig_signed_rr(arena_t *a, const uint8_t *owner, size_t olen,
                    uint16_t type, uint32_t ttl, const uint8_t *rdata,
                    uint16_t rdlen);
/* Deterministic jitter in [0, max] for an RRset. */
int64_t rrsig_jitter(const uint8_t *key, size_t klen, uint16_t type,
                     int64_t max);

/* denial.c: marks the RRsets to sign (RF_SIGN) and adds the NSEC3 or NSEC
 * records (TTL TTL) to the sorted zone; *made gets their number. */
int denial_build(zone_t *z, const signer_opts_t *o, uint32_t ttl,
                 uint64_t *made, signer_diag_t *diag);

/* reader.c */
typedef void (*warn_fn)(void *arg, const char *line);
enum read_mode {
    READ_UNSIGNED, /* zone to sign: checks, DNSSEC records dropped */
    READ_SIGNED,   /* previous signed zone: everything kept */
};
int reader_load(zone_t *z, const char *path, enum read_mode mode,
                warn_fn warn, void *warg, uint64_t *warnings,
                signer_diag_t *diag);

/* patch.c: the pieces [OFF, OFF+LEN) of BUF (the zone file PATH, first
 * lines LINE) read into the empty Z, sorted (as zone_sort sorts), by one
 * scanner in order or two on two threads (the second reads the first
 * piece too): the first must be the file's first chunk (its directives),
 * and every later one must leave the scanner in the state the first left
 * it in (CTX gets a digest of that state, *SOA the number of SOA
 * records).  Each record's line field holds the number of its piece
 * (errors name the right line).  0; 1 if not fit (an error, a warning,
 * another state: the caller reads the whole file); -ENOMEM. */
int reader_pieces(zone_t *z, const char *path, const char *buf,
                  const uint64_t *off, const uint64_t *len,
                  const uint64_t *line, size_t n, uint8_t ctx[16],
                  uint64_t *soa);
/* The content checks reader_load makes, on the sorted zone Z (warnings
 * are counted, not shown); 0 or the error (DIAG). */
int reader_check(zone_t *z, uint64_t *warnings, signer_diag_t *diag);

/* writer.c: the names [start, end) of Z in presentation form appended to
 * OUT, with the RRSIGs NEXT_SIG hands over (in order: index of the RRset's
 * first record and RDATA; returns 0, 1 at the end, <0 on failure). */
int writer_format(const zone_t *z, size_t start, size_t end,
                  int (*next_sig)(void *arg, size_t *pos,
                                  const uint8_t **rdata, uint16_t *len),
                  void *sarg, arena_t *out);
/* The version of the presentation form writer.c prints: bump it with any
 * change of the printed text, so that text printed by an older version
 * is not copied from a previous output (segment.c). */
#define WRITER_FORMAT_VERSION 1
/* How writer_write gets its blocks and what it lets its caller do on the
 * way: NEXT_BLOCK hands over the blocks in order (0 a block, 1 the end,
 * <0 failure); BEFORE_SYNC (may be NULL) is asked last, with the size
 * written, before the file is synced and renamed into place: non-zero
 * leaves no file; AFTER_RENAME (may be NULL) is told the outcome (0: in
 * place, before the directory is synced, so a file renamed beside it then
 * is synced with it; else the error, nothing in place). */
typedef struct writer_hooks {
    int (*next_block)(void *arg, const uint8_t **p, size_t *n);
    int (*before_sync)(void *arg, uint64_t size);
    void (*after_rename)(void *arg, int err);
    void *arg;
    bool no_spare; /* keep no spare of PATH (reap.c) */
} writer_hooks_t;
/* Writes the blocks to PATH atomically (temporary file, or PATH's spare
 * written over; fsync, rename or exchange, directory fsync); SIZE gets
 * the file's size. */
int writer_write(const char *path, const writer_hooks_t *h, uint64_t *size,
                 signer_diag_t *diag);
/* One RR in presentation form; returns the line length (buf >= 70000). */
size_t rr_to_text(const uint8_t *owner, size_t olen, uint16_t type,
                  uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                  char *buf);

/* cache.c: the signature cache sidecar (format in cache.c). */
#define CACHE_DIGEST 16
struct cache;
struct cache_w;
typedef struct cache_sigs {
    const uint8_t *p, *end;
    unsigned left;
} cache_sigs_t;
/* A segment of the previous zone file (segment.c). */
typedef struct cache_seg {
    size_t index;       /* in file order */
    uint64_t off;       /* in the zone file */
    uint32_t len;
    const uint8_t *td;  /* its text digest, CACHE_DIGEST octets */
} cache_seg_t;
int cache_md_new(EVP_MD_CTX **out);
/* Digest of the RRset [i, e) of Z (owner, type, TTL, canonical RDATA). */
int cache_rrset_digest(EVP_MD_CTX *m, const zone_t *z, size_t i, size_t e,
                       uint8_t dg[CACHE_DIGEST]);
/* Content digest of N bytes at P (the first octets of SHA-256): what a
 * segment's text is printed from, which registrants' data shapes. */
int cache_content_digest(EVP_MD_CTX *m, const uint8_t *p, size_t n,
                         uint8_t cd[CACHE_DIGEST]);
/* Text digest of N bytes at P (XXH3-128, canonical form): the bytes of a
 * zone file this signer wrote, checked against a file changed since. */
void cache_text_digest(const uint8_t *p, size_t n, uint8_t td[CACHE_DIGEST]);
int cache_w_new(struct cache_w **out);
void cache_w_free(struct cache_w *w);
/* Starts the entry of one RRset; cache_w_add appends its RRSIGs. */
int cache_w_begin(struct cache_w *w, const uint8_t dg[CACHE_DIGEST]);
int cache_w_add(struct cache_w *w, const uint8_t *rdata, uint16_t len);
/* Appends the next segment of the zone file (content and text digest,
 * length in octets). */
int cache_w_seg(struct cache_w *w, const uint8_t cd[CACHE_DIGEST],
                const uint8_t td[CACHE_DIGEST], uint32_t len);
/* OLD's segments [K, K2), as they are (their octets copied unchanged). */
int cache_w_segs_from(struct cache_w *w, const struct cache *old, size_t k,
                      size_t k2);
/* Segment I's digests set (it was added with others). */
void cache_w_seg_set(struct cache_w *w, uint64_t i,
                     const uint8_t cd[CACHE_DIGEST],
                     const uint8_t td[CACHE_DIGEST]);
/* The segments added so far; none again. */
uint64_t cache_w_nsegs(const struct cache_w *w);
void cache_w_segs_reset(struct cache_w *w);
/* Room for N segments more, taken at once. */
int cache_w_segs_reserve(struct cache_w *w, size_t n);
/* Writes the cache for the zone file of ZSIZE bytes (which its segments
 * must tile; origin of Z, SOA SERIAL) to a synced temporary file beside
 * PATH (PATH's spare written over unless NO_SPARE: side_open), whose
 * name goes to *TMP (caller renames it to PATH, or unlinks it, and frees
 * the name). */
int cache_w_write(struct cache_w *w, const char *path, bool no_spare,
                  const zone_t *z, uint64_t zsize, uint32_t serial,
                  char **tmp, signer_diag_t *diag);
/* Opens CACHE_PATH if it is intact, for Z's origin, and the zone file
 * ZONE_PATH has the size it records; -1 if not usable.  That the file's
 * bytes are the ones the cache belongs to is checked as they are copied
 * and by cache_verify.  Caller frees with cache_free. */
int cache_open(struct cache **out, const char *cache_path,
               const char *zone_path, const zone_t *z);
void cache_free(struct cache *c);
uint32_t cache_serial(const struct cache *c);
/* The RRSIGs stored for digest DG; -1 if none. */
int cache_find(const struct cache *c, const uint8_t dg[CACHE_DIGEST],
               cache_sigs_t *it);
int cache_sigs_next(cache_sigs_t *it, const uint8_t **rd, uint16_t *len);
/* May segments be copied (same presentation format and segment rule)? */
bool cache_can_copy(const struct cache *c);
/* The previous zone file's segment with content digest CD (HINT: the
 * index where it is likely to be); -1 if none. */
int cache_seg_find(const struct cache *c, const uint8_t cd[CACHE_DIGEST],
                   size_t hint, cache_seg_t *seg);
/* LEN octets of the previous zone file at OFF into BUF; -1 if they cannot
 * be read (the file changed). */
int cache_zone_read(const struct cache *c, uint64_t off, size_t len,
                    uint8_t *buf);
/* Segment K's bytes were read and matched its text digest. */
void cache_seg_verified(struct cache *c, size_t k);
/* Checks the segments [FROM, TO) not yet verified against their text
 * digests: 0 if they are the ones the cache belongs to, else -1 (or
 * -ENOMEM).  All of them (TO = SIZE_MAX): the whole zone file. */
int cache_verify(struct cache *c, size_t from, size_t to);

/* patch.c: the cache of the previous output, if it is the file WANT
 * describes (size, XXH3-128: that stands for its checksum); no segment
 * lookup table is built. */
struct pidx_file;
int cache_open_known(struct cache **out, const char *cache_path,
                     const zone_t *z, const struct pidx_file *want);
size_t cache_nsegs(const struct cache *c);
uint64_t cache_seg_off(const struct cache *c, size_t k);
/* Segment K's record: content digest, text digest, u32 length. */
const uint8_t *cache_seg_rec(const struct cache *c, size_t k);
/* The octets W's segments add up to. */
uint64_t cache_w_size(const struct cache_w *w);
/* OUT.zsc from OLD's entries but those whose first RRSIG DEAD (may be
 * NULL) says are gone with their RRsets (*DROPPED gets their number),
 * and W's (new RRsets), then W's segments (of the zone file of ZSIZE
 * octets): a temporary file beside PATH (its spare written over unless
 * NO_SPARE: side_open), not synced.  Begun as soon as
 * the entries are known (*OUT; W's entries sorted), ended once W's
 * segments are (*TMP gets the file's name, *FSIZE and FDG its size and
 * XXH3-128 digest, as pidx_file_get gives them); an error ends it too.
 * cache_patch_abort for one not ended. */
struct cache_pw;
int cache_patch_begin(const struct cache *old, struct cache_w *w,
                      bool (*dead)(void *arg, const uint8_t *rd, uint16_t len),
                      void *arg, const char *path, bool no_spare,
                      const zone_t *z, uint32_t serial, uint64_t zsize,
                      struct cache_pw **out, uint64_t *dropped);
int cache_patch_end(struct cache_pw *cp, const struct cache_w *w, char **tmp,
                    uint64_t *fsize, uint8_t fdg[16]);
void cache_patch_abort(struct cache_pw *cp);

/* segment.c: the output in segments (runs of names, see there). */
/* The rule's number, recorded in the cache: bump it when the cut rule
 * changes, so that segments of another rule are not looked up. */
#define SEGMENT_RULE 3
/* Does a segment end after the name of owner key KEY? */
bool segment_cut_after(const uint8_t *key, size_t klen);
struct sctx;
struct chunk;
/* The chunk's names in presentation form into ch->text, with the RRSIGs
 * of its items; with a cache to read or write, segment by segment (their
 * digests into ch->segs), copying from the previous output what it can.
 * Returns 0, -ESTALE if the previous zone file is not the one its cache
 * belongs to, or another error. */
int segment_format(struct sctx *c, struct chunk *ch, EVP_MD_CTX *md);


/* pindex.c: the patch index OUT.zsp (format there; patch.c uses it). */
#define PIDX_DIGEST 16
/* The index's secret: the chunk and content digests are XXH3 under it
 * (registrants shape the input's text; a digest they cannot compute is
 * one they cannot aim a collision at).  Random, made by the full run that
 * writes the first index, and handed from index to index. */
#define PIDX_KEY 192
int pidx_key_new(uint8_t key[PIDX_KEY]);
/* The secret of the index at PATH, from its header alone: 0, or -1. */
int pidx_key_read(const char *path, uint8_t key[PIDX_KEY]);
/* The input text cut into chunks: chunk k is [off[k], off[k+1]), dg[k] its
 * digest under the key. */
struct pchunks {
    uint8_t key[PIDX_KEY];
    size_t n;
    /* the chunks' offsets (n + 1: the text's length last), first lines
     * (from 1) and digests, read with pc_off, pc_line and pc_dg: a text
     * cut on two threads keeps the second's arrays as they are (chunks n1
     * on: copied after the first's, they were fresh memory on the path
     * of everything after), with its lines counted from its own start
     * (line2_add added); n1 is SIZE_MAX if there is one part */
    size_t n1;
    uint64_t *off, *off2;
    uint64_t *line, *line2, line2_add;
    uint8_t (*dg)[PIDX_DIGEST], (*dg2)[PIDX_DIGEST];
    uint32_t *coarse; /* per 256 lines: the chunk its first line is in */
    size_t ncoarse;
};
static inline uint64_t pc_off(const struct pchunks *pc, size_t i)
{
    return i < pc->n1 ? pc->off[i] : pc->off2[i - pc->n1];
}
static inline const uint64_t *pc_linep(const struct pchunks *pc, size_t i)
{
    return i < pc->n1 ? &pc->line[i] : &pc->line2[i - pc->n1];
}
static inline uint64_t pc_line(const struct pchunks *pc, size_t i)
{
    return i < pc->n1 ? pc->line[i] : pc->line2[i - pc->n1] + pc->line2_add;
}
static inline const uint8_t *pc_dg(const struct pchunks *pc, size_t i)
{
    return i < pc->n1 ? pc->dg[i] : pc->dg2[i - pc->n1];
}
/* 0, -1 if the text is not fit for patching, or -ENOMEM.  LEAN: on one
 * thread, giving the mapped pages behind back (a whole run's memory
 * peak); else a large text is cut on two threads. */
int pchunks_make(const char *buf, size_t len, bool lean,
                 const uint8_t key[PIDX_KEY], struct pchunks *pc);
void pchunks_free(struct pchunks *pc);
/* The chunk holding LINE. */
size_t pchunks_of_line(const struct pchunks *pc, uint64_t line);

#define PN_APEX 0x01
#define PN_DELEG 0x02  /* NS below the apex */
#define PN_DS 0x04
#define PN_OCCL 0x08   /* below a delegation or DNAME */
#define PN_NSEC3 0x10  /* owns an NSEC3 record */
#define PN_INPUT 0x20  /* has records from the input */
#define PN_CHAIN 0x40  /* hashed into the NSEC3 chain */
#define PN_DNAME 0x80

struct pidx_file { /* what the index was written with: size, content */
    uint64_t size;
    uint8_t dg[16]; /* XXH3-128 */
};
struct pidx_hdr {
    char magic[8];
    uint32_t version, endian;
    uint8_t config[32];      /* patch_config: options and keys */
    struct pidx_file out, zsc;
    int64_t min_exp, max_inc; /* over every RRSIG in OUT */
    uint32_t serial, soa_ttl, soa_min, next_id;
    uint8_t ctx[PIDX_DIGEST]; /* scanner state after the first chunk */
    uint8_t key[PIDX_KEY];    /* the digests' secret */
    uint64_t records_in, rrsets, signed_rrsets, nsec3, sigs;
    uint64_t nchunks, nnames, nchain, keys_len, bm_len, nmulti;
    uint64_t body_sum, hsum; /* XXH3-64 of the body, of this header */
};
struct pidx_chunk {
    uint8_t dg[PIDX_DIGEST];
    uint32_t id, nrec;
};
struct pidx_name {
    uint64_t off;      /* of its text in OUT */
    uint64_t content;  /* pidx_content of its input records */
    uint32_t koff;     /* its sort key in the keys blob */
    uint32_t chunk;    /* id of the input chunk of its records */
    uint16_t klen;
    uint8_t flags, nchunk, rrsets, nsigned, pad[2];
};
struct pidx_link {
    uint8_t hash[20];
    uint32_t bmlen;
    uint64_t bmoff;
};
struct pidx_multi { /* a name whose records lie in several chunks */
    uint32_t name, chunk;
};
struct pidx {
    struct pidx_hdr h;
    struct pidx_multi *multi;
    struct pidx_chunk *chunks;
    struct pidx_name *names;
    struct pidx_link *chain;
    uint8_t *keys, *bm;
    uint8_t *buf; /* read: everything above points into it */
    size_t buflen; /* buf is the file mapped (file_map) */
};
/* 0 or -1 (no index, or not a sound one).  LATER: the body's digest is
 * not checked here (its structure is: every part and key inside the
 * file), but by pidx_body_ok, which the caller must see true before it
 * commits anything made from the index. */
int pidx_read(struct pidx *x, const char *path, bool later);
bool pidx_body_ok(const struct pidx *x);
void pidx_free(struct pidx *x);
/* X's body given back (its header stays): once nothing reads it. */
void pidx_drop_body(struct pidx *x);
/* An index streamed to a temporary file beside its path (its spare
 * written over unless NO_SPARE: side_open): pw_open, the sections with
 * pw_put (pw_end after each: padding), pw_finish (the body's digest),
 * then pidx_write_end (the header, the length, the rename); pw_abort on
 * the way out if it was not ended. */
struct pwriter {
    int fd;
    uint64_t foff; /* octets written */
    char *tmp;
    uint8_t *buf;
    size_t len, hfrom; /* buf[hfrom..len) not yet digested */
    void *st; /* XXH3 state */
    uint64_t sect;
    int err;
    struct pw_io *io; /* its writing thread and buffers (pindex.c) */
};
int pw_open(struct pwriter *w, const char *path, bool no_spare);
void pw_put(struct pwriter *w, const void *p, size_t n);
/* Room in the buffer for up to WANT items of SIZE octets (*GOT of them,
 * 0 if not one fits: then pw_put), written in place; then pw_took with
 * the octets used.  (The buffer is written out only when full, so that
 * the file's blocks stay whole.) */
void *pw_room(struct pwriter *w, size_t size, size_t want, size_t *got);
void pw_took(struct pwriter *w, size_t n);
void pw_end(struct pwriter *w);
int pw_finish(struct pwriter *w, uint64_t *sum);
void pw_abort(struct pwriter *w);
int pidx_write_end(struct pidx_hdr *h, struct pwriter *w, const char *path,
                   uint64_t sum);
/* *P (an array of *CAP elements of SIZE octets) grown to hold NEED,
 * doubling; 0 or -ENOMEM. */
int vec_grow(void **p, size_t *cap, size_t need, size_t size);
/* FD's first LEN octets mapped read-only, faulted in at once (a file
 * just written or read is in the page cache: this costs page tables, not
 * copies into fresh memory); NULL if it cannot be.  munmap to free. */
uint8_t *file_map(int fd, size_t len);
/* The size and digest of the file at PATH (read in blocks); 0 or -1. */
int pidx_file_get(const char *path, struct pidx_file *f);
/* XXH3 over long inputs at the CPU's vector width (xxlong.c): the same
 * digests as the inlined xxHash.  xxl_128 gives the canonical form; a
 * state (xxl_new: 64 bits, or 128 if WIDE) is fed and read with the same
 * WIDE, and freed with xxl_free. */
uint64_t xxl_64(const void *p, size_t n);
void xxl_128(const void *p, size_t n, uint8_t dg[16]);
void *xxl_new(bool wide);
void xxl_update(void *st, bool wide, const void *p, size_t n);
uint64_t xxl_digest64(void *st);
void xxl_digest128(void *st, uint8_t dg[16]);
void xxl_free(void *st);

/* A zone file's digest (OUT's, P's): the XXH3-128 of the XXH3-64s of its
 * FDIG_BLOCK-octet blocks (the last may be shorter), so that a block
 * written again can be digested again alone.  Fed in order; the block
 * digests are kept (8 octets per block). */
#define FDIG_BLOCK 4096u
struct fdig {
    uint64_t *bd;
    size_t nb, cap, plen;
    uint64_t size;
    uint8_t part[FDIG_BLOCK];
};
int fdig_feed(struct fdig *f, const void *p, size_t n);
/* Room for the digests of a file of SIZE octets, taken at once. */
int fdig_reserve(struct fdig *f, uint64_t size);
/* The last, shorter block digested (no more feeding). */
int fdig_end(struct fdig *f);
/* Block B digested again from its octets (FDIG_BLOCK, or fewer for the
 * last; or the block being fed, all its octets so far). */
void fdig_redo(struct fdig *f, size_t b, const void *p, size_t n);
void fdig_digest(const struct fdig *f, uint8_t dg[16]);
void fdig_free(struct fdig *f);
/* A digest of the input records (type, TTL, RDATA) of the name [I, E)
 * of Z, records the signer made left out, under KEY. */
uint64_t pidx_content(const zone_t *z, size_t i, size_t e,
                      const uint8_t key[PIDX_KEY]);
/* The index of a whole run's zone Z (signed, denial records in) whose
 * text is OUT_TEXT, into W (its header into *H, but for the fields the
 * caller fills: config, serial, SOA, times, counts of the run, the
 * cache).  0; 1: the zone gets no index (DNAME, a name with 255 RRsets);
 * -EINVAL if the text does not match the zone. */
int pidx_build(struct pidx_hdr *h, struct pwriter *w, const zone_t *z,
               const signer_opts_t *o, const struct pchunks *pc,
               const char *out_text, size_t out_len);

/* sign.c, keys.c, reuse.c, pipeline.c: one signing run. */
struct item {
    uint64_t pos; /* index of the RRset's first record */
    uint8_t dg[CACHE_DIGEST]; /* RRset digest (with a cache only) */
    uint32_t job; /* job index, or UINT32_MAX: reused */
    uint32_t off; /* RRSIG header (job) or whole RDATA (reused) in data */
    uint16_t len;
};

/* A segment of the output (segment.c): content and text digest, length. */
struct segrec {
    uint8_t cd[CACHE_DIGEST], td[CACHE_DIGEST];
    uint32_t len;
};

#define CHUNK_SPARE 4
struct chunk {
    size_t start, end;
    int done;
    struct item *items;
    size_t nitems, icap;
    arena_t data; /* headers, signed data, reused RDATA */
    hsm_job_t *jobs;
    size_t njobs, jcap;
    uint8_t *sigs;
    size_t sigcap;
    size_t read; /* formatter cursor in items */
    uint8_t rd[2048];
    arena_t text; /* the chunk in presentation form */
    arena_t scratch; /* a segment's content, to digest */
    struct segrec *segs; /* the chunk's segments (with a cache) */
    size_t nsegs, segcap;
    size_t copied_end; /* 1 + last previous segment copied, 0: none */
    uint64_t rrsets, signed_rrsets; /* in the chunk, for the stats */
};

struct keyuse {
    size_t idx; /* in the key set */
    uint8_t alg;
    uint16_t tag;
};

struct sctx {
    zone_t *z;
    zone_t *prev;         /* --previous parsed from text, or */
    struct cache *pcache; /* --previous through its signature cache */
    struct cache_w *cw;   /* the cache for OUT, NULL: none */
    size_t cw_last;       /* writer side: RRset of the last cache entry */
    int cw_err;
    uint32_t serial;      /* of the zone being signed */
    uint32_t serial_in;   /* the input's */
    void (*warn)(void *arg, const char *line);
    void *warg;
    const signer_opts_t *o;
    const hsm_keyset_t *ks;
    struct hsm_pool *pool;
    size_t helpers;                   /* signing helpers proven at the
                                       * pool's start */
    struct keyuse ksk[16], zsk[16]; /* sign DNSKEY / everything else */
    size_t nksk, nzsk;
    size_t sigmax;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cursor;
    struct chunk **chunks;
    size_t nchunks, ccap;
    int err;
    signer_diag_t errdiag;
    uint64_t made, reused, rrsets, signed_rrsets;
    uint64_t seg_copied, seg_printed; /* segments (segment.c) */
    int stale_found; /* previous file changed: 1 seen copying, 2 at the end */
    size_t verified_to;   /* writer side: previous segments checked below */
    pthread_t cache_th;   /* writes OUT's cache while OUT is synced */
    bool cache_started;
    int cache_ret;
    char *cache_tmp;
    signer_diag_t cache_diag;
    uint64_t out_size;
    size_t wchunk; /* writer side */
    struct chunk *wlast; /* written, not yet accounted for and freed */
    struct chunk *spare[CHUNK_SPARE]; /* written chunks kept for reuse */
    size_t nspare;
    time_t last_progress;
    int64_t sig_min_exp, sig_max_inc; /* over the RRSIGs written */
    uint32_t soa_ttl, soa_min;        /* of the zone being signed */
    struct hsm_set *set;              /* for patch.c */
    const void *hooks;
};

/* sign.c: the consistency proof (DESIGN.md invariant 1) and the pool.
 * HELPERS: its workers may sign through signing helper processes
 * (opts helper_argv, helpers): the full road's; the patch road's few
 * signatures would not pay for the helpers' start. */
int sign_start_pool(struct sctx *c, struct hsm_set *set, bool helpers,
                    const signer_hooks_t *hooks, signer_diag_t *diag);
/* patch.c: OUT by editing --previous (0 done, 1 not possible here: the
 * caller takes another road, <0 failed); OUT.zsp after a whole run. */
int patch_run(struct sctx *c, struct hsm_set *set,
              const signer_hooks_t *hooks, signer_stats_t *stats,
              signer_diag_t *diag);
void patch_index_write(struct sctx *c, const signer_stats_t *stats,
                       bool cached);

void keys_pick(struct sctx *c);
int keys_add_apex(struct sctx *c, uint32_t dnskey_ttl, uint32_t param_ttl);
/* Does the previous zone hold the RRset [i, e) unchanged? */
bool reuse_rrset_same(const struct sctx *c, size_t i, size_t e, size_t *pi);
/* A reusable RRSIG RDATA of the previous zone for key K, or NULL. */
const uint8_t *reuse_sig_find(const struct sctx *c, const rec_t *first,
                              const struct keyuse *k, uint8_t labels,
                              uint16_t *len);
/* The same among the cached RRSIGs of the RRset (IT is not advanced). */
const uint8_t *reuse_cache_find(const struct sctx *c, const cache_sigs_t *it,
                                const rec_t *first, const struct keyuse *k,
                                uint8_t labels, uint16_t *len);
/* Signs and writes the zone to OUT (writer.c), chunk by chunk.  -ESTALE:
 * the previous zone file is not the one its cache belongs to (nothing
 * written; the caller may start over without the cache). */
int pipeline_run(struct sctx *c, const char *out, signer_diag_t *diag);
/* Back to the state before pipeline_run (after -ESTALE). */
void pipeline_reset(struct sctx *c);
void chunk_free(struct chunk *ch);
/* The items and signing jobs of chunk CH (RRSIG headers, reuse). */
int chunk_build(struct sctx *c, struct chunk *ch, EVP_MD_CTX *md);
/* Its jobs signed by the pool. */
/* CH's jobs made ready to sign: their data offsets turned into pointers
 * into CH's data, each with room for its signature in CH's sigs. */
int chunk_jobs_point(struct sctx *c, struct chunk *ch);
int chunk_sign(struct sctx *c, struct chunk *ch, hsm_diag_t *hd);
void sig_times(struct sctx *c, const uint8_t *rd, uint16_t len);
/* RRSIG RDATA of item IT of chunk CH (header + signature assembled in
 * BUF, at least 2048 bytes, for a fresh signature). */
const uint8_t *chunk_item_rdata(const struct chunk *ch, const struct item *it,
                                uint8_t *buf, uint16_t *len);

#endif
