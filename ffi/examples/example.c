/* Store and fetch one object. Build:
 *   cc example.c $(pkg-config --cflags --libs infinicache) -o example
 * Run: ./example [PROXY_ADDR]   (default 127.0.0.1:6378, as `make run` serves) */
#include <stdio.h>
#include <string.h>

#include "infinicache.h"

int main(int argc, char **argv) {
  const char *proxy = argc > 1 ? argv[1] : "127.0.0.1:6378";
  infinicache_client *client;
  infinicache_error *err = infinicache_client_new(&proxy, 1, NULL, &client);
  if (err == NULL) {
    err = infinicache_put(client, (const uint8_t *)"greeting", 8,
                          (const uint8_t *)"hello, lambda", 13, NULL);
  }
  if (err == NULL) {
    infinicache_bytes value;
    bool found;
    err = infinicache_get(client, (const uint8_t *)"greeting", 8, &value, &found);
    if (err == NULL && found) printf("%.*s\n", (int)value.len, (const char *)value.data);
    infinicache_bytes_free(&value);
  }
  infinicache_client_free(client);
  if (err != NULL) {
    fprintf(stderr, "infinicache error %d: %s\n", (int)err->code, err->message);
    infinicache_error_free(err);
    return 1;
  }
  return 0;
}
