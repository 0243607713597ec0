// IndexWriter: a format-2 writer's index batches, written in order on a
// thread of their own (journal_impl.h).
#include <rocksdb/options.h>

#include "journal_impl.h"

namespace tidemark::journal {

IndexWriter::IndexWriter(rocksdb::DB* db) : db_(db), thread_([this] { Run(); }) {}

IndexWriter::~IndexWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

Status IndexWriter::Submit(rocksdb::WriteBatch* batch, uint64_t* number) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || !error_.ok(); });
  if (!error_.ok()) return error_;
  queue_.emplace_back(std::move(*batch));
  *number = ++submitted_;
  batch->Clear();
  lock.unlock();
  work_cv_.notify_one();
  return Status::Ok();
}

Status IndexWriter::Drain() {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return (queue_.empty() && !writing_) || !error_.ok(); });
  return error_;
}

uint64_t IndexWriter::written() const { return written_.load(std::memory_order_acquire); }

void IndexWriter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;  // stopping, nothing left
    rocksdb::WriteBatch b = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    const bool failed = !error_.ok();
    lock.unlock();
    Status s = failed ? Status::Ok() : FromRocks(db_->Write({}, &b), "write the journal's index");
    lock.lock();
    writing_ = false;
    written_.fetch_add(1, std::memory_order_release);
    if (!s.ok() && error_.ok()) error_ = s;
    done_cv_.notify_all();
  }
}

}  // namespace tidemark::journal
