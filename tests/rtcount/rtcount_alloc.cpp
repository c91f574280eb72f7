// librtcount.so: the allocator wrappers. malloc & co. and every operator
// new/delete are interposed and forward to glibc's exported __libc_* entry
// points (no dlsym, so no recursion). A call is counted (rtcount::count, in
// rtcount.cpp) when the calling thread is inside a real-time section. The
// wrappers never allocate. See rtcount.cpp for the library as a whole.
#include <cerrno>
#include <cstddef>
#include <new>

#include "tests/rtcount/rtcount_count.hpp"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
}

using rtcount::count;
using enum rtcount::Kind;

// ---------------------------------------------------------------- C allocator

extern "C" {

void* malloc(size_t n) noexcept {
  count(kMalloc);
  return __libc_malloc(n);
}

void* calloc(size_t n, size_t size) noexcept {
  count(kCalloc);
  return __libc_calloc(n, size);
}

void* realloc(void* p, size_t n) noexcept {
  count(kRealloc);
  return __libc_realloc(p, n);
}

void* reallocarray(void* p, size_t n, size_t size) noexcept {
  count(kRealloc);
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_realloc(p, bytes);
}

void free(void* p) noexcept {
  if (p) count(kFree);
  __libc_free(p);
}

void* memalign(size_t align, size_t n) noexcept {
  count(kMemalign);
  return __libc_memalign(align, n);
}

void* aligned_alloc(size_t align, size_t n) noexcept {
  count(kMemalign);
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, size_t align, size_t n) noexcept {
  count(kMemalign);
  if (align == 0 || (align & (align - 1)) != 0 || align % sizeof(void*) != 0) return EINVAL;
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void* valloc(size_t n) noexcept {
  count(kMemalign);
  return __libc_valloc(n);
}

void* pvalloc(size_t n) noexcept {
  count(kMemalign);
  return __libc_pvalloc(n);
}

}  // extern "C"

// ---------------------------------------------------------------- C++ allocator

namespace {

void* new_impl(size_t n, size_t align) {
  count(kNew);
  if (n == 0) n = 1;
  for (;;) {
    void* p = align ? __libc_memalign(align, n) : __libc_malloc(n);
    if (p) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}

void* new_nothrow(size_t n, size_t align) noexcept {
  try {
    return new_impl(n, align);
  } catch (...) {
    return nullptr;
  }
}

void delete_impl(void* p) noexcept {
  if (p) count(kDelete);
  __libc_free(p);
}

size_t al(std::align_val_t a) noexcept { return static_cast<size_t>(a); }

}  // namespace

void* operator new(size_t n) { return new_impl(n, 0); }
void* operator new[](size_t n) { return new_impl(n, 0); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
void* operator new[](size_t n, std::align_val_t a) { return new_impl(n, al(a)); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return new_nothrow(n, al(a)); }
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return new_nothrow(n, al(a)); }

void operator delete(void* p) noexcept { delete_impl(p); }
void operator delete[](void* p) noexcept { delete_impl(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete(void* p, size_t) noexcept { delete_impl(p); }
void operator delete[](void* p, size_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { delete_impl(p); }
