// preadv2 with RWF_NOWAIT (Linux >= 4.14): page-cache hits served on the event loop (issue 15).
//
// Each call either completes from the page cache without sleeping or returns -EAGAIN at once, so the
// caller hands only the misses to libuv's threadpool. Results are numbers, never exceptions: bytes
// read (>= 0) or a negative errno; the JS side treats every negative value as "take the threadpool
// path", which then reports real errors the usual way. (pwritev2 RWF_NOWAIT was measured too: ext4
// answers EOPNOTSUPP for buffered writes, so writes stay on the threadpool.)
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include <node_api.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static napi_value number(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

// Typed-array data pointer, already adjusted for the view's byte offset (slab views are subarrays).
static int view_of(napi_env env, napi_value v, void **data, size_t *len) {
  napi_typedarray_type type;
  size_t length;
  if (napi_get_typedarray_info(env, v, &type, &length, data, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *len = length;
  return 1;
}

static int position_of(napi_env env, napi_value v, int64_t *pos) {
  return napi_get_value_int64(env, v, pos) == napi_ok && *pos >= 0;
}

// readNowait(fd, buf, pos): fills buf from pos; returns bytes read, or -errno (-EAGAIN: not cached).
static napi_value read_nowait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t pos;
  struct iovec iov;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || !view_of(env, argv[1], &iov.iov_base, &iov.iov_len) ||
      !position_of(env, argv[2], &pos)) {
    return number(env, -EINVAL);
  }
  ssize_t n;
  do n = preadv2(fd, &iov, 1, (off_t)pos, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  return number(env, n < 0 ? -errno : n);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "readNowait", NAPI_AUTO_LENGTH, read_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "readNowait", fn);
  napi_value eagain;
  napi_create_int32(env, EAGAIN, &eagain);
  napi_set_named_property(env, exports, "EAGAIN", eagain);
  return exports;
}
