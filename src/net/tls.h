/*
 * net/tls.h - OpenSSL contexts for the server (STARTTLS, implicit TLS) and the client.
 *
 * Owns:  loading the certificate and key (or making a self-signed pair for a test set-up),
 *        protocol and cipher defaults (TLS 1.2 at least), reloading on SIGHUP, client
 *        verification settings, and the text that logs and Received headers show.
 * Never: touches sockets: the connection drivers wrap their bufferevents.
 */
#ifndef POSTEL_NET_TLS_H
#define POSTEL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A server context from cert_file/key_file. With both NULL, a self-signed pair for
 * hostname is made (once) under dir and used. Returns NULL with err on failure.
 */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *dir,
    const char *hostname, char *err, size_t errsz);
/* A client context: system CA store, or ca_file when given. Returns NULL with err. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errsz);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" for an SSL after the handshake. */
void tls_describe(SSL *ssl, char *out, size_t osz);

#endif
