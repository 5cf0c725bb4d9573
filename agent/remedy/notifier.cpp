#include "notifier.h"

#include <spdlog/spdlog.h>

namespace mend {

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable())
    worker_.join();
}

void Notifier::send(SpawnOptions page) {
  std::lock_guard<std::mutex> l(mu_);
  if (!worker_.joinable())
    worker_ = std::thread([this] { run(); });
  if (queue_.size() >= kMaxQueued) {
    queue_.pop_front();
    ++dropped_;
    SPDLOG_WARN("Notify queue full ({} pages): dropped the oldest page", kMaxQueued);
  }
  queue_.push_back(std::move(page));
  cv_.notify_one();
}

void Notifier::drain() {
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait(l, [this] { return queue_.empty() && !busy_; });
}

uint64_t Notifier::sent() const {
  std::lock_guard<std::mutex> l(mu_);
  return sent_;
}
uint64_t Notifier::failed() const {
  std::lock_guard<std::mutex> l(mu_);
  return failed_;
}
uint64_t Notifier::dropped() const {
  std::lock_guard<std::mutex> l(mu_);
  return dropped_;
}

void Notifier::run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stop_)
        return;
      continue;
    }
    SpawnOptions page = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    auto res = spawn_and_wait(page);
    bool ok = res.ok() && res->ok();
    if (!res.ok())
      SPDLOG_WARN("Failed to run the notify command: {}", res.error().message);
    else if (!res->ok())
      SPDLOG_WARN("Notify command {}: {}", page.argv[0], res->summary());
    l.lock();
    busy_ = false;
    ++(ok ? sent_ : failed_);
    if (queue_.empty())
      idle_cv_.notify_all();
  }
}

}  // namespace mend
