// preadv2 with RWF_NOWAIT (Linux >= 4.14): page-cache hits served on the event loop; pwritev batches (issue 15).
//
// Each call either completes from the page cache without sleeping or returns -EAGAIN at once, so the
// caller hands only the misses to libuv's threadpool. Results are numbers, never exceptions: bytes
// read (>= 0) or a negative errno; the JS side treats every negative value as "take the threadpool
// path", which then reports real errors the usual way. (pwritev2 RWF_NOWAIT was measured too: ext4
// answers EOPNOTSUPP for buffered writes, so writes stay on the threadpool.)
//
// writeBatch runs several queued pwritevs (each with its own fd: the object cache's chunk files share a
// batch) as ONE threadpool job: one thread wake-up and one completion per batch instead of per write,
// and no two pool threads spinning on the inode's
// rwsem (ext4 takes it exclusively for every buffered write, so parallel writes to one file gain
// nothing; the profile of the 4 KiB write row showed 6 % of the agent's CPU in rwsem_spin_on_owner).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

// One batch: the iovecs of every write back to back, and per write its iovec count, position and result.
typedef struct batch {
  napi_async_work work;
  napi_ref keep;     // the JS arrays holding the buffers: alive until the job completes
  napi_ref callback;
  uint32_t writes;
  int *fds;
  struct iovec *iov;
  uint32_t *counts;
  int64_t *pos;
  double *results;   // the caller's Float64Array: bytes written, or -errno
  struct batch *next; // a writer's queue
} batch_t;

static void batch_free(napi_env env, batch_t *b) {
  if (b->keep) napi_delete_reference(env, b->keep);
  if (b->callback) napi_delete_reference(env, b->callback);
  if (b->work) napi_delete_async_work(env, b->work);
  free(b->iov);
  free(b->fds);
  free(b->counts);
  free(b->pos);
  free(b);
}

// Threadpool side: every write in order, each finished across short writes (a signal, a quota) or
// stopped at its first error. Writes stay in submission order, as one pool thread ran them before.
static void batch_execute(napi_env env, void *data) {
  (void)env;
  batch_t *b = data;
  struct iovec *iov = b->iov;
  for (uint32_t i = 0; i < b->writes; i++) {
    uint32_t cnt = b->counts[i];
    size_t want = 0;
    for (uint32_t k = 0; k < cnt; k++) want += iov[k].iov_len;
    int64_t pos = b->pos[i];
    size_t done = 0;
    struct iovec *cur = iov;
    uint32_t left = cnt;
    double result = 0;
    while (done < want) {
      // A write of many Data-Out PDUs can carry more iovecs than one call takes (libuv splits the same way).
      int iovcnt = left > IOV_MAX ? IOV_MAX : (int)left;
      ssize_t n = pwritev(b->fds[i], cur, iovcnt, (off_t)(pos + (int64_t)done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) { result = -errno; break; }
      if (n == 0) { result = -EIO; break; }
      done += (size_t)n;
      // Skip what was written (this consumes the batch's own iovec copy, never the JS buffers).
      while (left > 0 && (size_t)n >= cur->iov_len) { n -= (ssize_t)cur->iov_len; cur++; left--; }
      if (left > 0 && n > 0) { cur->iov_base = (char *)cur->iov_base + n; cur->iov_len -= (size_t)n; }
    }
    b->results[i] = result < 0 ? result : (double)done;
    iov += cnt;
  }
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  napi_value cb, global, arg;
  napi_get_reference_value(env, b->callback, &cb);
  napi_get_global(env, &global);
  napi_get_boolean(env, status == napi_ok, &arg);
  batch_free(env, b);
  napi_call_function(env, global, cb, 1, &arg, NULL);
}

static void *throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

// Builds a batch from (fds: Int32Array, bufs, counts: Uint32Array, positions: Float64Array, results: Float64Array,
// n, done): write i is bufs[sum(counts[0..i)) ..][0..counts[i]) at positions[i] of fds[i]; results[i] gets its bytes
// written or -errno. NULL (with a TypeError thrown) on malformed input: nothing has been written then.
// The buffers, the results array and the callback stay referenced until the batch is freed.
static batch_t *batch_from(napi_env env, napi_value *argv) {
  uint32_t n, nbufs;
  if (napi_get_value_uint32(env, argv[5], &n) != napi_ok || n == 0) return throw_type(env, "writeBatch: count");
  if (napi_get_array_length(env, argv[1], &nbufs) != napi_ok) return throw_type(env, "writeBatch: bufs");
  napi_valuetype t;
  if (napi_typeof(env, argv[6], &t) != napi_ok || t != napi_function) return throw_type(env, "writeBatch: callback");
  napi_typedarray_type ty;
  size_t len;
  void *fds, *counts, *positions, *results;
  if (napi_get_typedarray_info(env, argv[2], &ty, &len, &counts, NULL, NULL) != napi_ok || ty != napi_uint32_array || len < n) return throw_type(env, "writeBatch: counts");
  if (napi_get_typedarray_info(env, argv[3], &ty, &len, &positions, NULL, NULL) != napi_ok || ty != napi_float64_array || len < n) return throw_type(env, "writeBatch: positions");
  if (napi_get_typedarray_info(env, argv[4], &ty, &len, &results, NULL, NULL) != napi_ok || ty != napi_float64_array || len < n) return throw_type(env, "writeBatch: results");
  if (napi_get_typedarray_info(env, argv[0], &ty, &len, &fds, NULL, NULL) != napi_ok || ty != napi_int32_array || len < n) return throw_type(env, "writeBatch: fds");
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) total += ((uint32_t *)counts)[i];
  if (total != nbufs || nbufs == 0) return throw_type(env, "writeBatch: counts do not add up to bufs.length");
  batch_t *b = calloc(1, sizeof *b);
  if (!b) return throw_type(env, "writeBatch: out of memory");
  b->writes = n;
  b->results = results;
  b->iov = malloc(sizeof(struct iovec) * nbufs);
  b->fds = malloc(sizeof(int) * n);
  b->counts = malloc(sizeof(uint32_t) * n);
  b->pos = malloc(sizeof(int64_t) * n);
  if (!b->iov || !b->fds || !b->counts || !b->pos) { batch_free(env, b); return throw_type(env, "writeBatch: out of memory"); }
  memcpy(b->fds, fds, sizeof(int) * n);
  memcpy(b->counts, counts, sizeof(uint32_t) * n);
  for (uint32_t i = 0; i < n; i++) {
    double p = ((double *)positions)[i];
    if (!(p >= 0 && p <= 9007199254740991.0)) { batch_free(env, b); return throw_type(env, "writeBatch: position"); }
    b->pos[i] = (int64_t)p;
  }
  for (uint32_t k = 0; k < nbufs; k++) {
    napi_value v;
    if (napi_get_element(env, argv[1], k, &v) != napi_ok || !view_of(env, v, &b->iov[k].iov_base, &b->iov[k].iov_len)) {
      batch_free(env, b);
      return throw_type(env, "writeBatch: bufs must be Uint8Arrays");
    }
  }
  napi_value keep;
  napi_create_array_with_length(env, 2, &keep);
  napi_set_element(env, keep, 0, argv[1]);
  napi_set_element(env, keep, 1, argv[4]);
  napi_create_reference(env, keep, 1, &b->keep);
  napi_create_reference(env, argv[6], 1, &b->callback);
  return b;
}

// writeBatch(fds, bufs, counts, positions, results, n, done): the batch as one threadpool job; done(ok)
// runs on the event loop once all n have run.
static napi_value write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) return throw_type(env, "writeBatch: 7 arguments");
  batch_t *b = batch_from(env, argv);
  if (!b) return NULL;
  napi_value name;
  napi_create_string_utf8(env, "outpost:writeBatch", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, batch_execute, batch_complete, b, &b->work) != napi_ok ||
      napi_queue_async_work(env, b->work) != napi_ok) {
    batch_free(env, b);
    return throw_type(env, "writeBatch: could not queue");
  }
  return NULL;
}

// ---- a file's own writer thread ----------------------------------------------------------------
//
// A threadpool job costs a thread wake-up per batch (~10 µs of the event loop's CPU on this kind of
// machine, the largest item of the 4 KiB write profile), because the next batch is only queued once the
// last one is done and the pool thread has gone back to sleep. A writer is one thread per file that takes
// batches from a queue: a batch submitted while another runs is picked up without any wake-up, and the
// writes of one file still run one at a time, in submission order, as ext4's inode lock wants.
typedef struct writer {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  batch_t *head, *tail;
  int closing;
  int waiting;        // the thread sleeps on cv
  uint32_t inflight;  // event loop only: batches submitted, not yet completed
  int refs;           // event loop only: the JS handle and the thread (its tsfn) each hold one
  napi_threadsafe_function tsfn;
} writer_t;

static void writer_unref(writer_t *w) {
  if (--w->refs > 0) return;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

static void *writer_main(void *arg) {
  writer_t *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->closing) {
      w->waiting = 1;
      pthread_cond_wait(&w->cv, &w->mu);
      w->waiting = 0;
    }
    batch_t *b = w->head;
    if (b) {
      w->head = b->next;
      if (!w->head) w->tail = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (!b) break; // closing, and everything queued before has run
    batch_execute(NULL, b);
    napi_call_threadsafe_function(w->tsfn, b, napi_tsfn_blocking);
  }
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  return NULL;
}

// On the event loop: a batch the thread has run (env NULL: the environment is going away).
static void writer_done(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  writer_t *w = context;
  batch_t *b = data;
  if (!env) return;
  if (--w->inflight == 0) napi_unref_threadsafe_function(env, w->tsfn);
  batch_complete(env, napi_ok, b);
}

static void writer_thread_gone(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  writer_unref(data);
}

// No more batches: the thread runs what is queued, then ends.
static void writer_stop(writer_t *w) {
  pthread_mutex_lock(&w->mu);
  w->closing = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void writer_handle_gone(napi_env env, void *data, void *hint) {
  (void)hint;
  (void)env;
  writer_t *w = data;
  writer_stop(w); // collected without close(): the thread ends once its queue is empty
  writer_unref(w);
}

// The `n` arguments of a writer call, the first being the writer handle (NULL, with a TypeError thrown, if not).
static writer_t *writer_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what) {
  size_t argc = n;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return throw_type(env, what);
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || !p) return throw_type(env, "writer: not a writer handle");
  return p;
}

// createWriter(): a writer handle (its thread starts now and sleeps until a batch comes).
static napi_value create_writer(napi_env env, napi_callback_info info) {
  (void)info;
  writer_t *w = calloc(1, sizeof *w);
  if (!w) return throw_type(env, "createWriter: out of memory");
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->refs = 2;
  napi_value name, handle;
  napi_create_string_utf8(env, "outpost:writer", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, w, writer_thread_gone, w, writer_done, &w->tsfn) != napi_ok) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return throw_type(env, "createWriter: no threadsafe function");
  }
  napi_unref_threadsafe_function(env, w->tsfn); // nothing in flight: the thread does not keep the process up
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&thread, &attr, writer_main, w);
  pthread_attr_destroy(&attr);
  if (err) {
    w->refs = 1; // no handle will exist: the finalizer of the threadsafe function frees the writer
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    return throw_type(env, "createWriter: no thread");
  }
  if (napi_create_external(env, w, writer_handle_gone, NULL, &handle) != napi_ok) return throw_type(env, "createWriter: no handle");
  return handle;
}

// writerSubmit(writer, fds, bufs, counts, positions, results, n, done): as writeBatch, on the writer's thread,
// after every batch submitted to it before.
static napi_value writer_submit(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  writer_t *w = writer_call(env, info, 8, argv, "writerSubmit: 8 arguments");
  if (!w) return NULL;
  batch_t *b = batch_from(env, argv + 1);
  if (!b) return NULL;
  pthread_mutex_lock(&w->mu);
  if (w->closing) {
    pthread_mutex_unlock(&w->mu);
    batch_free(env, b);
    return throw_type(env, "writerSubmit: writer closed");
  }
  if (w->tail) w->tail->next = b;
  else w->head = b;
  w->tail = b;
  if (w->waiting) pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (w->inflight++ == 0) napi_ref_threadsafe_function(env, w->tsfn);
  return NULL;
}

// writerClose(writer): no more batches; the thread runs what is queued (their callbacks still come), then ends.
static napi_value writer_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  writer_t *w = writer_call(env, info, 1, argv, "writerClose: 1 argument");
  if (w) writer_stop(w);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "readNowait", NAPI_AUTO_LENGTH, read_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "readNowait", fn);
  napi_create_function(env, "writeBatch", NAPI_AUTO_LENGTH, write_batch, NULL, &fn);
  napi_set_named_property(env, exports, "writeBatch", fn);
  napi_create_function(env, "createWriter", NAPI_AUTO_LENGTH, create_writer, NULL, &fn);
  napi_set_named_property(env, exports, "createWriter", fn);
  napi_create_function(env, "writerSubmit", NAPI_AUTO_LENGTH, writer_submit, NULL, &fn);
  napi_set_named_property(env, exports, "writerSubmit", fn);
  napi_create_function(env, "writerClose", NAPI_AUTO_LENGTH, writer_close, NULL, &fn);
  napi_set_named_property(env, exports, "writerClose", fn);
  napi_value eagain;
  napi_create_int32(env, EAGAIN, &eagain);
  napi_set_named_property(env, exports, "EAGAIN", eagain);
  return exports;
}
