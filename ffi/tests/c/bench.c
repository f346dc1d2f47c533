/* Latency of put/get through the C API: bench PROXY_ADDR SIZE ITERATIONS.
 * Prints "c size=N put_us=X get_us=Y" (mean microseconds per operation).
 * Driven by the ignored `bench` test in ffi/tests/c_suite.rs. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infinicache.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(infinicache_error *err) {
  fprintf(stderr, "error %d: %s\n", (int)err->code, err->message);
  infinicache_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  const char *proxy = argv[1];
  size_t size = (size_t)strtoull(argv[2], NULL, 10);
  int iterations = atoi(argv[3]);
  infinicache_options options = infinicache_options_default();
  options.data_shards = 4;
  options.parity_shards = 2;
  infinicache_client *client;
  infinicache_error *err = infinicache_client_new(&proxy, 1, &options, &client);
  if (err) return fail(err);
  uint8_t *data = malloc(size);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 7);
  char key[64];
  snprintf(key, sizeof key, "bench/c/%zu", size);
  const uint8_t *k = (const uint8_t *)key;
  /* Warm up: connections, node invocations. */
  for (int i = 0; i < 3; i++) {
    if ((err = infinicache_put(client, k, strlen(key), data, size, NULL))) return fail(err);
  }
  double put_total = 0, get_total = 0;
  for (int i = 0; i < iterations; i++) {
    double t0 = now_us();
    if ((err = infinicache_put(client, k, strlen(key), data, size, NULL))) return fail(err);
    double t1 = now_us();
    infinicache_bytes out;
    bool found;
    if ((err = infinicache_get(client, k, strlen(key), &out, &found))) return fail(err);
    double t2 = now_us();
    if (!found || out.len != size) return 3;
    infinicache_bytes_free(&out);
    put_total += t1 - t0;
    get_total += t2 - t1;
  }
  printf("c size=%zu put_us=%.1f get_us=%.1f\n", size, put_total / iterations,
         get_total / iterations);
  free(data);
  infinicache_client_free(client);
  return 0;
}
