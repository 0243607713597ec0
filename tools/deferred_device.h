// tidemark protect's stand-in for the tap while the journal is prepared.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "tidemark/capture/nbd.h"
#include "tidemark/capture/tap.h"

namespace tidemark::tools {

// Stands in for the tap while the journal is prepared (the import of a
// large volume takes a while): the NBD address is taken first, so a bad
// --listen fails before the journal is touched, and early clients wait.
class DeferredDevice : public capture::nbd::BlockDevice {
 public:
  // `member`: the volume's index in the tap's group.
  explicit DeferredDevice(uint64_t size_bytes, uint32_t member = 0)
      : size_bytes_(size_bytes), member_(member) {}
  uint64_t size_bytes() const override { return size_bytes_; }
  void Submit(capture::nbd::Request request, capture::nbd::ReplyFn reply) override {
    std::shared_ptr<capture::Tap> tap;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return tap_ || aborted_; });
      tap = tap_;
    }
    if (!tap) {
      capture::nbd::Reply r;
      r.status = Status::Aborted("the volume could not be prepared");
      reply(std::move(r));
      return;
    }
    tap->Submit(member_, std::move(request), std::move(reply));
  }
  void Set(std::shared_ptr<capture::Tap> tap) {
    {
      std::lock_guard lock(mu_);
      tap_ = std::move(tap);
    }
    cv_.notify_all();
  }
  // Answers waiting and later requests with an error (the daemon failed).
  void Abort() {
    {
      std::lock_guard lock(mu_);
      aborted_ = true;
    }
    cv_.notify_all();
  }

 private:
  uint64_t size_bytes_;
  uint32_t member_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<capture::Tap> tap_;
  bool aborted_ = false;
};

}  // namespace tidemark::tools
