#include "common/cpu_cache.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <map>
#include <mutex>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace pyhpe {
namespace cpu {
namespace {

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pool_.find(n);
      if (it != pool_.end()) {
        p = it->second;
        pool_.erase(it);
        cached_ -= n;
      }
    }
    if (p == nullptr) p = c10::alloc_cpu(n);
    return {p, new Block{p, n}, &release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void lock() { mu_.lock(); }
  void unlock() { mu_.unlock(); }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  void clear() {
    std::multimap<size_t, void*> pool;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pool.swap(pool_);
      cached_ = 0;
    }
    for (auto& kv : pool) c10::free_cpu(kv.second);
  }

 private:
  struct Block {
    void* ptr;
    size_t size;
  };

  static void release(void* ctx);

  std::mutex mu_;
  std::multimap<size_t, void*> pool_;
  size_t cached_ = 0;
};

// Never destroyed: tensors may outlive static destruction. The pool's lock is held across
// fork() (DataLoader workers), so a child never inherits it locked by a thread it lacks.
CachingCpuAllocator& allocator() {
  static auto* a = [] {
    auto* created = new CachingCpuAllocator();
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { allocator().lock(); }, [] { allocator().unlock(); },
                   [] { allocator().unlock(); });
#endif
    return created;
  }();
  return *a;
}

void CachingCpuAllocator::release(void* ctx) {
  auto* b = static_cast<Block*>(ctx);
  CachingCpuAllocator& a = allocator();
  bool kept = false;
  {
    std::lock_guard<std::mutex> lock(a.mu_);
    if (a.cached_ + b->size <= kMaxCachedBytes) {
      a.pool_.emplace(b->size, b->ptr);
      a.cached_ += b->size;
      kept = true;
    }
  }
  if (!kept) c10::free_cpu(b->ptr);
  delete b;
}

}  // namespace

at::Tensor empty_cached(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (!options.device().is_cpu() || bytes < kMinCachedBytes) return at::empty(sizes, options);
  return at::detail::empty_generic(sizes, &allocator(),
                                   c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), std::nullopt);
}

size_t cached_bytes() { return allocator().cached(); }

void empty_cache() { allocator().clear(); }

}  // namespace cpu
}  // namespace pyhpe
