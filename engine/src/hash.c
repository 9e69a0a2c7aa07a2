/*
** hash.c — SHA-256 for the hash-chained interaction log and for content
** hashes of canonical definitions, from OpenSSL's libcrypto (a Debian
** package), never a home-made implementation.
*/
#include <openssl/evp.h>

#include "chm_int.h"

int chm__sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0, i;
  if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
    out[0] = '\0';
    return -1;
  }
  for (i = 0; i < n; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
  return 0;
}

int chm__l_sha256(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char out[65];
  if (chm__sha256_hex(s, len, out) != 0) return luaL_error(L, "sha256 failed");
  lua_pushstring(L, out);
  return 1;
}
