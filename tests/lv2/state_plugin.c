/* Test LV2 plugins for rackd-lv2 (bundle rackd-test.lv2, built by CMake):
 *   urn:rackd:test:state    mono; out = in * gain. The gain is internal
 *                           state (not a port), picked at first instantiation
 *                           from the clock, saved and restored via LV2 State
 *                           (as an atom:Int: a float would go through text).
 *                           Control output `gain` shows it. (A gain, not an
 *                           offset: rackd mutes a module whose output is DC.)
 *   urn:rackd:test:noaudio  one control port, no audio ports.
 *   urn:rackd:test:needs    requires a feature no host provides.
 *   urn:rackd:test:allocates  mono copy that mallocs and frees in every
 *                           run(): what a real-time audit must name.
 * Threads: run() on the host's audio thread; save/restore per LV2 State. */
#include <lv2/atom/atom.h>
#include <lv2/core/lv2.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "urn:rackd:test:state#step"

typedef struct {
  const float* in;
  float* out;
  float* gain_out;
  const float* seed;
  int32_t step;  /* gain = 1.001 + step / 1000 */
  float gain;
  LV2_URID key, atom_int;
} State;

static LV2_Handle instantiate(const LV2_Descriptor* d, double rate, const char* path,
                              const LV2_Feature* const* features) {
  (void)d, (void)rate, (void)path;
  State* s = calloc(1, sizeof(State));
  for (int i = 0; features && features[i]; ++i)
    if (!strcmp(features[i]->URI, LV2_URID__map)) {
      LV2_URID_Map* map = features[i]->data;
      s->key = map->map(map->handle, KEY);
      s->atom_int = map->map(map->handle, LV2_ATOM__Int);
    }
  if (!s->key) {
    free(s);
    return NULL;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->step = (int32_t)(ts.tv_nsec % 997);
  s->gain = 1.001f + (float)s->step / 1000.0f;  /* 1.001 .. 1.997 */
  return s;
}

static void connect_port(LV2_Handle h, uint32_t port, void* data) {
  State* s = h;
  switch (port) {
    case 0: s->in = data; break;
    case 1: s->out = data; break;
    case 2: s->seed = data; break;
    case 3: s->gain_out = data; break;
  }
}

static void run(LV2_Handle h, uint32_t n) {
  State* s = h;
  for (uint32_t i = 0; i < n; ++i) s->out[i] = s->in[i] * s->gain;
  if (s->gain_out) *s->gain_out = s->gain;
}

static LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store, LV2_State_Handle sh, uint32_t flags,
                             const LV2_Feature* const* features) {
  (void)flags, (void)features;
  State* s = h;
  return store(sh, s->key, &s->step, sizeof(int32_t), s->atom_int, LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
}

static LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve, LV2_State_Handle sh,
                                uint32_t flags, const LV2_Feature* const* features) {
  (void)flags, (void)features;
  State* s = h;
  size_t size;
  uint32_t type, vflags;
  const void* v = retrieve(sh, s->key, &size, &type, &vflags);
  if (v && size == sizeof(int32_t) && type == s->atom_int) {
    s->step = *(const int32_t*)v;
    s->gain = 1.001f + (float)s->step / 1000.0f;
  }
  return LV2_STATE_SUCCESS;
}

static const void* extension_data(const char* uri) {
  static const LV2_State_Interface state = {save, restore};
  return strcmp(uri, LV2_STATE__interface) ? NULL : &state;
}

static void cleanup(LV2_Handle h) { free(h); }

/* The two refused plugins: never instantiated by a host that checks. */
static LV2_Handle instantiate_none(const LV2_Descriptor* d, double r, const char* p, const LV2_Feature* const* f) {
  (void)d, (void)r, (void)p, (void)f;
  return calloc(1, sizeof(State));
}
static void connect_none(LV2_Handle h, uint32_t port, void* data) { (void)h, (void)port, (void)data; }
static void run_none(LV2_Handle h, uint32_t n) { (void)h, (void)n; }

/* urn:rackd:test:allocates: a copy through a buffer allocated per run(). */
typedef struct {
  const float* in;
  float* out;
} Copy;

static LV2_Handle instantiate_copy(const LV2_Descriptor* d, double r, const char* p, const LV2_Feature* const* f) {
  (void)d, (void)r, (void)p, (void)f;
  return calloc(1, sizeof(Copy));
}

static void connect_copy(LV2_Handle h, uint32_t port, void* data) {
  Copy* c = h;
  if (port == 0) c->in = data;
  if (port == 1) c->out = data;
}

static void run_allocating(LV2_Handle h, uint32_t n) {
  Copy* c = h;
  float* volatile tmp = malloc(n * sizeof(float));
  if (!tmp) return;
  memcpy(tmp, c->in, n * sizeof(float));
  memcpy(c->out, tmp, n * sizeof(float));
  free(tmp);
}

static const LV2_Descriptor kDescriptors[] = {
    {"urn:rackd:test:state", instantiate, connect_port, NULL, run, NULL, cleanup, extension_data},
    {"urn:rackd:test:noaudio", instantiate_none, connect_none, NULL, run_none, NULL, cleanup, NULL},
    {"urn:rackd:test:needs", instantiate_none, connect_none, NULL, run_none, NULL, cleanup, NULL},
    {"urn:rackd:test:allocates", instantiate_copy, connect_copy, NULL, run_allocating, NULL, cleanup, NULL},
};

LV2_SYMBOL_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) {
  return index < sizeof kDescriptors / sizeof kDescriptors[0] ? &kDescriptors[index] : NULL;
}
