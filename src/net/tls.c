/*
 * net/tls.c - OpenSSL contexts.
 */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "util/fsx.h"
#include "util/log.h"

#define TLS_CIPHERS "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DES:!PSK:!SRP:!CAMELLIA"

static void ssl_err(char *err, size_t errsz, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errsz, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

/* A new file at path, never through a link someone left there (the directory may belong to
 * the daemon's user while this runs as root): whatever is at path is removed first. */
static FILE *create_new(const char *path, mode_t mode)
{
    if (unlink(path) == -1 && errno != ENOENT)
        return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd == -1)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (f == NULL)
        close(fd);
    return f;
}

/* Make a self-signed P-256 certificate for hostname, valid ten years. */
static int make_selfsigned(const char *crt, const char *key, const char *hostname, char *err,
    size_t errsz)
{
    int rc = -1;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    if (pk == NULL || x == NULL) {
        ssl_err(err, errsz, "cannot make a key");
        goto out;
    }
    unsigned char serial[8];
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1,
        -1, 0);
    X509_set_issuer_name(x, name);
    char san[300];
    snprintf(san, sizeof san, "DNS:%s", hostname);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (ext) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, pk, EVP_sha256()) == 0) {
        ssl_err(err, errsz, "cannot sign the certificate");
        goto out;
    }
    f = create_new(key, 0600);
    if (f == NULL || PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        snprintf(err, errsz, "cannot write %s: %s", key, strerror(errno));
        goto out;
    }
    fclose(f);
    f = create_new(crt, 0644);
    if (f == NULL || PEM_write_X509(f, x) != 1) {
        snprintf(err, errsz, "cannot write %s: %s", crt, strerror(errno));
        goto out;
    }
    log_info("tls: made a self-signed certificate for %s in %s", hostname, crt);
    rc = 0;
out:
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *dir,
    const char *hostname, char *err, size_t errsz)
{
    char crt[4096], key[4096];
    if (cert_file == NULL || key_file == NULL) {
        if (fsx_mkdirs(dir, 0700) == -1) {
            snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
            return NULL;
        }
        snprintf(crt, sizeof crt, "%s/selfsigned.crt", dir);
        snprintf(key, sizeof key, "%s/selfsigned.key", dir);
        if ((access(crt, R_OK) != 0 || access(key, R_OK) != 0) &&
            make_selfsigned(crt, key, hostname, err, errsz) == -1)
            return NULL;
        cert_file = crt;
        key_file = key;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, errsz, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
        SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        char what[4200];
        snprintf(what, sizeof what, "certificate %s", cert_file);
        ssl_err(err, errsz, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[4200];
        snprintf(what, sizeof what, "private key %s", key_file);
        ssl_err(err, errsz, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Sessions are short; tickets let a client resume without server state. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postel", 6);
    return ctx;
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_err(err, errsz, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
        SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        ssl_err(err, errsz, ca_file ? ca_file : "the system CA store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_describe(SSL *ssl, char *out, size_t osz)
{
    int alg = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg);
    snprintf(out, osz, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
        SSL_get_cipher_name(ssl), bits, alg);
}
