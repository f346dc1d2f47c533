/*
 * Tests of the C API against a live proxy.
 *
 *   test_infinicache PROXY_ADDR               the suite; prints "N passed, M failed"
 *   test_infinicache --stopped-proxy ADDR     connects, prints "connected", waits for
 *                                             a line on stdin (the driver stops the
 *                                             proxy meanwhile), then expects a fast
 *                                             INFINICACHE_UNAVAILABLE
 *   test_infinicache --secret SECRET ADDR     the tests of a proxy started with
 *                                             --secret SECRET; prints "N passed, M failed"
 *   test_infinicache --tls CA OTHER_CA ADDR   the tests of a proxy started with
 *                                             --tls-cert/--tls-key of a certificate CA
 *                                             signed for localhost and 127.0.0.1 (OTHER_CA:
 *                                             another CA's PEM); prints "N passed, M failed"
 *
 * The address may also come from the environment variable INFINICACHE_PROXY.
 * Driven by ffi/tests/c_suite.rs, which builds this file and starts the proxy.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "infinicache.h"

static int passed, failed;
static const char *proxy;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__,   \
              #cond);                                                        \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, "\n");                                                 \
      return 0;                                                              \
    }                                                                        \
  } while (0)

/* Fails the test if err is not NULL, printing its message. */
#define CHECK_OK(call)                                                       \
  do {                                                                       \
    infinicache_error *err_ = (call);                                        \
    if (err_ != NULL) {                                                      \
      fprintf(stderr, "  %s:%d: %s failed: code %d: %s\n", __FILE__,        \
              __LINE__, #call, (int)err_->code, err_->message);              \
      infinicache_error_free(err_);                                          \
      return 0;                                                              \
    }                                                                        \
  } while (0)

/* Expects an error with the given code and a non-empty message. */
#define CHECK_CODE(call, want)                                               \
  do {                                                                       \
    infinicache_error *err_ = (call);                                        \
    CHECK(err_ != NULL, "%s succeeded, expected code %d", #call, (int)(want)); \
    int code_ = (int)err_->code;                                             \
    int has_msg_ = err_->message != NULL && err_->message[0] != '\0';        \
    if (code_ != (int)(want) || !has_msg_)                                   \
      fprintf(stderr, "  %s: code %d, message \"%s\"\n", #call, code_,      \
              err_->message ? err_->message : "(null)");                     \
    infinicache_error_free(err_);                                            \
    CHECK(code_ == (int)(want), "code %d, want %d", code_, (int)(want));     \
    CHECK(has_msg_, "empty message");                                        \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static infinicache_client *connect_client(void) {
  infinicache_client *client = NULL;
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  options.timeout_ms = 60000;
  infinicache_error *err = infinicache_client_new(&proxy, 1, &options, &client);
  if (err != NULL) {
    fprintf(stderr, "  connect to %s: code %d: %s\n", proxy, (int)err->code,
            err->message);
    infinicache_error_free(err);
    return NULL;
  }
  return client;
}

static int round_trip(infinicache_client *c, const char *key, size_t size) {
  uint8_t *data = malloc(size ? size : 1);
  CHECK(data != NULL, "malloc");
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 31 + size);
  uint64_t version = 0;
  infinicache_error *err = infinicache_put(c, (const uint8_t *)key, strlen(key),
                                           size ? data : NULL, size, &version);
  if (err != NULL) {
    fprintf(stderr, "  put %zu bytes: %s\n", size, err->message);
    infinicache_error_free(err);
    free(data);
    return 0;
  }
  infinicache_bytes out;
  bool found = false;
  err = infinicache_get(c, (const uint8_t *)key, strlen(key), &out, &found);
  int ok = err == NULL && found && out.len == size &&
           (size == 0 || memcmp(out.data, data, size) == 0) && version >= 1;
  if (!ok)
    fprintf(stderr, "  round trip of %zu bytes: err=%s found=%d len=%zu version=%llu\n",
            size, err ? err->message : "none", (int)found, out.len,
            (unsigned long long)version);
  infinicache_error_free(err);
  infinicache_bytes_free(&out);
  infinicache_bytes_free(&out); /* freeing twice is harmless */
  free(data);
  return ok;
}

static int test_round_trips(infinicache_client *c) {
  return round_trip(c, "c/empty", 0) && round_trip(c, "c/small", 1024) &&
         round_trip(c, "c/large", 10 * 1024 * 1024);
}

static int test_binary_key_and_overwrite(infinicache_client *c) {
  const uint8_t key[] = {0, 1, 2, 0xff, 0};
  uint64_t v1 = 0, v2 = 0;
  CHECK_OK(infinicache_put(c, key, sizeof key, (const uint8_t *)"one", 3, &v1));
  CHECK_OK(infinicache_put(c, key, sizeof key, (const uint8_t *)"two!", 4, &v2));
  CHECK(v2 > v1, "versions %llu then %llu", (unsigned long long)v1,
        (unsigned long long)v2);
  infinicache_bytes out;
  bool found;
  CHECK_OK(infinicache_get(c, key, sizeof key, &out, &found));
  int same = found && out.len == 4 && memcmp(out.data, "two!", 4) == 0;
  infinicache_bytes_free(&out);
  CHECK(same, "overwritten value not returned");
  return 1;
}

static int test_missing_key(infinicache_client *c) {
  const char *key = "c/never-stored";
  infinicache_bytes out;
  bool found = true;
  CHECK_OK(infinicache_get(c, (const uint8_t *)key, strlen(key), &out, &found));
  CHECK(!found, "found a key that was never stored");
  CHECK(out.data == NULL && out.len == 0, "missing key left data");
  infinicache_bytes_free(&out);
  return 1;
}

static int test_delete_exists(infinicache_client *c) {
  const uint8_t *key = (const uint8_t *)"c/delete-me";
  size_t n = strlen("c/delete-me");
  bool flag = true;
  CHECK_OK(infinicache_exists(c, key, n, &flag));
  CHECK(!flag, "exists before put");
  CHECK_OK(infinicache_put(c, key, n, (const uint8_t *)"x", 1, NULL));
  CHECK_OK(infinicache_exists(c, key, n, &flag));
  CHECK(flag, "not exists after put");
  CHECK_OK(infinicache_delete(c, key, n, &flag));
  CHECK(flag, "delete says it did not exist");
  CHECK_OK(infinicache_exists(c, key, n, &flag));
  CHECK(!flag, "exists after delete");
  CHECK_OK(infinicache_delete(c, key, n, &flag));
  CHECK(!flag, "second delete says it existed");
  CHECK_OK(infinicache_delete(c, key, n, NULL));
  return 1;
}

#define THREADS 8
#define OPS_PER_THREAD 40

struct worker {
  infinicache_client *client;
  int id;
  int errors;
};

static void *work(void *arg) {
  struct worker *w = arg;
  char key[64];
  uint8_t value[4096];
  for (int i = 0; i < OPS_PER_THREAD; i++) {
    snprintf(key, sizeof key, "c/thread-%d/%d", w->id, i % 5);
    size_t len = (size_t)(i * 97 + w->id) % sizeof value;
    memset(value, w->id * 16 + i, len);
    infinicache_error *err =
        infinicache_put(w->client, (const uint8_t *)key, strlen(key), value, len, NULL);
    if (err) {
      fprintf(stderr, "  thread %d put: %s\n", w->id, err->message);
      infinicache_error_free(err);
      w->errors++;
      continue;
    }
    infinicache_bytes out;
    bool found;
    err = infinicache_get(w->client, (const uint8_t *)key, strlen(key), &out, &found);
    if (err || !found || out.len != len || (len && memcmp(out.data, value, len) != 0)) {
      fprintf(stderr, "  thread %d get %s: %s\n", w->id, key,
              err ? err->message : "wrong value");
      w->errors++;
    }
    infinicache_error_free(err);
    infinicache_bytes_free(&out);
  }
  return NULL;
}

static int test_concurrent_threads(infinicache_client *c) {
  pthread_t threads[THREADS];
  struct worker workers[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i] = (struct worker){.client = c, .id = i, .errors = 0};
    CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0, "pthread_create");
  }
  int errors = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    errors += workers[i].errors;
  }
  CHECK(errors == 0, "%d of %d operations failed", errors, THREADS * OPS_PER_THREAD);
  return 1;
}

/* A loopback port with nothing listening on it. */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
    return 1;
  close(fd);
  return ntohs(addr.sin_port);
}

static int test_unreachable_proxy(void) {
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", closed_port());
  const char *addrs[] = {addr};
  infinicache_client *client = (infinicache_client *)addrs; /* must be reset */
  double start = now_s();
  CHECK_CODE(infinicache_client_new(addrs, 1, NULL, &client), INFINICACHE_UNAVAILABLE);
  double took = now_s() - start;
  CHECK(client == NULL, "out not reset on failure");
  CHECK(took < 5.0, "took %.1f s", took);
  return 1;
}

static int test_invalid_arguments(infinicache_client *c) {
  infinicache_client *client = NULL;
  infinicache_options options = infinicache_options_default();
  const char *addrs[] = {proxy, NULL};

  options.data_shards = 300;
  CHECK_CODE(infinicache_client_new(addrs, 1, &options, &client), INFINICACHE_INVALID_ARGUMENT);
  options = infinicache_options_default();
  options.data_shards = 200;
  options.parity_shards = 100; /* k + r > 256 */
  CHECK_CODE(infinicache_client_new(addrs, 1, &options, &client), INFINICACHE_INVALID_ARGUMENT);
  options = infinicache_options_default();
  options.parity_shards = -2;
  CHECK_CODE(infinicache_client_new(addrs, 1, &options, &client), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_client_new(addrs, 0, NULL, &client), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_client_new(NULL, 1, NULL, &client), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_client_new(addrs, 2, NULL, &client), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_client_new(addrs, 1, NULL, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK(client == NULL, "client set by a failed call");

  const uint8_t *k = (const uint8_t *)"c/key";
  bool flag;
  infinicache_bytes out;
  CHECK_CODE(infinicache_put(c, NULL, 3, k, 1, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_put(c, k, 0, k, 1, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_put(c, k, 5, NULL, 10, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_put(NULL, k, 5, k, 1, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_get(c, NULL, 0, &out, &flag), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_get(c, k, 5, NULL, &flag), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_get(c, k, 5, &out, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_exists(c, k, 5, NULL), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_exists(c, NULL, 5, &flag), INFINICACHE_INVALID_ARGUMENT);
  CHECK_CODE(infinicache_delete(NULL, k, 5, &flag), INFINICACHE_INVALID_ARGUMENT);

  /* Freeing NULL is a no-op everywhere. */
  infinicache_error_free(NULL);
  infinicache_bytes_free(NULL);
  infinicache_client_free(NULL);
  return 1;
}

static int test_options_default(void) {
  infinicache_options o = infinicache_options_default();
  CHECK(o.data_shards == 0 && o.parity_shards == INFINICACHE_PARITY_DEFAULT &&
            o.timeout_ms == 0 && o.connect_timeout_ms == 0 && o.secret == NULL &&
            !o.tls && o.tls_ca_file == NULL && o.tls_server_name == NULL,
        "unexpected defaults");
  /* Proxy defaults: a client with NULL options works. */
  infinicache_client *client = NULL;
  CHECK_OK(infinicache_client_new(&proxy, 1, NULL, &client));
  CHECK(client != NULL, "no client");
  int ok = round_trip(client, "c/default-options", 5000);
  infinicache_client_free(client);
  CHECK(ok, "round trip with default options");
  return 1;
}

static int stopped_proxy(void) {
  infinicache_client *client = NULL;
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  infinicache_error *err = infinicache_client_new(&proxy, 1, &options, &client);
  if (err) {
    fprintf(stderr, "connect: %s\n", err->message);
    return 1;
  }
  printf("connected\n");
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  double start = now_s();
  bool flag;
  err = infinicache_exists(client, (const uint8_t *)"k", 1, &flag);
  double took = now_s() - start;
  int ok = err != NULL && err->code == INFINICACHE_UNAVAILABLE && took < 5.0;
  fprintf(stderr, "after the proxy stopped: code %d (%s) in %.3f s\n",
          err ? (int)err->code : 0, err ? err->message : "no error", took);
  infinicache_error_free(err);
  infinicache_client_free(client);
  printf("%d passed, %d failed\n", ok, !ok);
  return ok ? 0 : 1;
}

/* ---- against a proxy started with --secret (see secret_suite) ---- */

static const char *secret;

/* Connects with `client_secret` as options.secret, expecting a refusal:
 * INFINICACHE_UNAUTHORIZED, *out reset to NULL, a message containing `want`
 * and never the secret that was sent. */
static int expect_refused(const char *client_secret, const char *want) {
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  options.secret = client_secret;
  infinicache_client *client = (infinicache_client *)&options; /* must be reset */
  infinicache_error *err = infinicache_client_new(&proxy, 1, &options, &client);
  CHECK(err != NULL, "connected with secret \"%s\"",
        client_secret ? client_secret : "(NULL)");
  int code = (int)err->code;
  int has_want = strstr(err->message, want) != NULL;
  int leaks = client_secret != NULL && client_secret[0] != '\0' &&
              strstr(err->message, client_secret) != NULL;
  if (code != INFINICACHE_UNAUTHORIZED || !has_want || leaks)
    fprintf(stderr, "  refused: code %d, message \"%s\"\n", code, err->message);
  infinicache_error_free(err);
  CHECK(code == INFINICACHE_UNAUTHORIZED, "code %d, want INFINICACHE_UNAUTHORIZED", code);
  CHECK(has_want, "message lacks \"%s\"", want);
  CHECK(!leaks, "the message shows the secret");
  CHECK(client == NULL, "out not reset on failure");
  return 1;
}

static int test_no_secret_is_unauthorized(void) {
  /* NULL options, NULL secret and "" all mean "no secret". */
  infinicache_client *client = NULL;
  CHECK_CODE(infinicache_client_new(&proxy, 1, NULL, &client), INFINICACHE_UNAUTHORIZED);
  CHECK(client == NULL, "client set by a refused connect");
  return expect_refused(NULL, "requires a secret") && expect_refused("", "requires a secret");
}

static int test_wrong_secret_is_unauthorized(void) {
  char wrong[256];
  snprintf(wrong, sizeof wrong, "%s!", secret); /* one byte more */
  return expect_refused(wrong, "wrong secret") && expect_refused("guess", "wrong secret");
}

static int test_secret_round_trips(void) {
  /* A copy freed right after connecting: the library keeps none of it. */
  char *copy = strdup(secret);
  CHECK(copy != NULL, "strdup");
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  options.timeout_ms = 60000;
  options.secret = copy;
  infinicache_client *client = NULL;
  infinicache_error *err = infinicache_client_new(&proxy, 1, &options, &client);
  memset(copy, 'x', strlen(copy));
  free(copy);
  CHECK_OK(err);
  CHECK(client != NULL, "no client");
  int ok = round_trip(client, "c/secret/small", 1024) &&
           round_trip(client, "c/secret/large", 3 * 1024 * 1024) &&
           test_delete_exists(client);
  infinicache_client_free(client);
  CHECK(ok, "operations with the secret");
  return 1;
}

/* ---- against a proxy started with --tls-cert/--tls-key (see tls_suite) ---- */

static const char *tls_ca, *tls_other_ca;

/* Connects with these TLS settings (RS(4+2)); returns the error, if any. */
static infinicache_error *tls_connect(const char *addr, bool tls, const char *ca_file,
                                      const char *server_name, infinicache_client **out) {
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  options.timeout_ms = 60000;
  options.tls = tls;
  options.tls_ca_file = ca_file;
  options.tls_server_name = server_name;
  return infinicache_client_new(&addr, 1, &options, out);
}

/* Expects the connection to fail with `want`, a message containing one of
 * `words` (NULL-terminated list), and *out reset to NULL. */
static int expect_tls_failure(const char *addr, bool tls, const char *ca_file,
                              const char *server_name, infinicache_code want,
                              const char *const *words) {
  infinicache_client *client = (infinicache_client *)&client; /* must be reset */
  infinicache_error *err = tls_connect(addr, tls, ca_file, server_name, &client);
  CHECK(err != NULL, "connected (tls=%d, ca=%s, name=%s)", (int)tls,
        ca_file ? ca_file : "(NULL)", server_name ? server_name : "(NULL)");
  int code = (int)err->code;
  int has_word = words == NULL;
  for (const char *const *w = words; w != NULL && *w != NULL; w++)
    if (strstr(err->message, *w) != NULL) has_word = 1;
  if (code != (int)want || !has_word)
    fprintf(stderr, "  tls=%d ca=%s name=%s: code %d, message \"%s\"\n", (int)tls,
            ca_file ? ca_file : "(NULL)", server_name ? server_name : "(NULL)", code,
            err->message);
  infinicache_error_free(err);
  CHECK(code == (int)want, "code %d, want %d", code, (int)want);
  CHECK(has_word, "the message does not say why");
  CHECK(client == NULL, "out not reset on failure");
  return 1;
}

static int test_tls_round_trips(void) {
  /* A copy freed right after connecting: the library keeps none of it. */
  char *ca = strdup(tls_ca);
  CHECK(ca != NULL, "strdup");
  infinicache_client *client = NULL;
  infinicache_error *err = tls_connect(proxy, false, ca, NULL, &client);
  memset(ca, 'x', strlen(ca));
  free(ca);
  CHECK_OK(err);
  CHECK(client != NULL, "no client");
  int ok = round_trip(client, "c/tls/small", 1024) &&
           round_trip(client, "c/tls/large", 1024 * 1024) && test_delete_exists(client);
  infinicache_client_free(client);
  CHECK(ok, "operations over TLS");
  return 1;
}

static int test_tls_server_name(void) {
  /* The certificate names localhost and 127.0.0.1: "localhost:PORT" verifies
   * by the address's host, "127.0.0.1:PORT" with tls_server_name. */
  const char *port = strrchr(proxy, ':');
  CHECK(port != NULL, "no port in %s", proxy);
  char by_name[64];
  snprintf(by_name, sizeof by_name, "localhost%s", port);
  infinicache_client *client = NULL;
  CHECK_OK(tls_connect(by_name, true, tls_ca, NULL, &client));
  int ok = round_trip(client, "c/tls/by-name", 4096);
  infinicache_client_free(client);
  CHECK(ok, "round trip via %s", by_name);
  client = NULL;
  CHECK_OK(tls_connect(proxy, true, tls_ca, "localhost", &client));
  ok = round_trip(client, "c/tls/server-name", 4096);
  infinicache_client_free(client);
  CHECK(ok, "round trip with tls_server_name");
  /* A name the certificate does not carry fails the handshake. */
  const char *why[] = {"TLS", NULL};
  return expect_tls_failure(proxy, false, tls_ca, "other.example", INFINICACHE_UNAVAILABLE, why);
}

static int test_plain_client_is_unavailable(void) {
  /* Zero-initialised TLS fields mean plain TCP, which a TLS proxy refuses. */
  infinicache_client *client = NULL;
  CHECK_CODE(infinicache_client_new(&proxy, 1, NULL, &client), INFINICACHE_UNAVAILABLE);
  CHECK(client == NULL, "client set by a refused connect");
  const char *why[] = {"TLS", NULL};
  return expect_tls_failure(proxy, false, NULL, NULL, INFINICACHE_UNAVAILABLE, why);
}

static int test_other_ca_is_unavailable(void) {
  const char *why[] = {"TLS", "certificate", NULL};
  return expect_tls_failure(proxy, false, tls_other_ca, NULL, INFINICACHE_UNAVAILABLE, why) &&
         expect_tls_failure(proxy, true, tls_other_ca, "localhost", INFINICACHE_UNAVAILABLE, why);
}

static int test_tls_invalid_arguments(void) {
  const char *missing[] = {"/nonexistent/ca.pem", NULL};
  const char *empty[] = {"tls_ca_file is empty", NULL};
  const char *bad_name[] = {"not a valid name", NULL};
  return expect_tls_failure(proxy, false, "/nonexistent/ca.pem", NULL,
                            INFINICACHE_INVALID_ARGUMENT, missing) &&
         expect_tls_failure(proxy, true, "", NULL, INFINICACHE_INVALID_ARGUMENT, empty) &&
         expect_tls_failure(proxy, false, tls_ca, "not a name", INFINICACHE_INVALID_ARGUMENT,
                            bad_name);
}

#define RUN(test)                                     \
  do {                                                \
    double start_ = now_s();                          \
    int ok_ = (test);                                 \
    printf("%s %s (%.2f s)\n", ok_ ? "ok  " : "FAIL", #test, now_s() - start_); \
    fflush(stdout);                                   \
    if (ok_) passed++; else failed++;                 \
  } while (0)

static int secret_suite(void) {
  RUN(test_no_secret_is_unauthorized());
  RUN(test_wrong_secret_is_unauthorized());
  RUN(test_secret_round_trips());
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

static int tls_suite(void) {
  RUN(test_tls_round_trips());
  RUN(test_tls_server_name());
  RUN(test_plain_client_is_unavailable());
  RUN(test_other_ca_is_unavailable());
  RUN(test_tls_invalid_arguments());
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  int stopped = argc > 2 && strcmp(argv[1], "--stopped-proxy") == 0;
  int with_secret = argc > 3 && strcmp(argv[1], "--secret") == 0;
  int with_tls = argc > 4 && strcmp(argv[1], "--tls") == 0;
  if (with_secret) {
    secret = argv[2];
    proxy = argv[3];
  } else if (with_tls) {
    tls_ca = argv[2];
    tls_other_ca = argv[3];
    proxy = argv[4];
  } else {
    proxy = stopped ? argv[2] : argc > 1 ? argv[1] : getenv("INFINICACHE_PROXY");
  }
  if (proxy == NULL) {
    fprintf(stderr, "usage: %s PROXY_ADDR (or INFINICACHE_PROXY)\n", argv[0]);
    return 2;
  }
  if (stopped) return stopped_proxy();
  if (with_secret) return secret_suite();
  if (with_tls) return tls_suite();

  infinicache_client *client = connect_client();
  if (client == NULL) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(test_round_trips(client));
  RUN(test_binary_key_and_overwrite(client));
  RUN(test_missing_key(client));
  RUN(test_delete_exists(client));
  RUN(test_concurrent_threads(client));
  RUN(test_invalid_arguments(client));
  RUN(test_options_default());
  RUN(test_unreachable_proxy());
  infinicache_client_free(client);

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
