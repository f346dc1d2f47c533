// The header must compile as C++ and give C linkage to the functions.
#include "infinicache.h"

#include <type_traits>

static_assert(std::is_same<decltype(&infinicache_client_new),
                           infinicache_error *(*)(const char *const *, size_t,
                                                  const infinicache_options *,
                                                  infinicache_client **)>::value,
              "infinicache_client_new signature");
static_assert(INFINICACHE_OK == 0, "INFINICACHE_OK is 0");

int main() {
  infinicache_options options = infinicache_options_default();
  bool plain = !options.tls && options.tls_ca_file == nullptr &&
               options.tls_server_name == nullptr;
  return options.data_shards == 0 && plain ? 0 : 1;
}
