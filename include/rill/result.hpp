// rill/result.hpp: errors as values.
//
// Every fallible call in rill returns `rill::Result<T>`: either a T or a `rill::Error`
// carrying a code and a human-readable message. It is a subset of C++23's
// `std::expected<T, rill::Error>` (has_value, value, error, operator*, operator->), so code
// written against it keeps compiling if it is ever replaced by std::expected.
//
// Why not exceptions: embedders build with -fno-exceptions; "no new data", "torn tail" and
// "log full" are normal outcomes, and a failure should show in the signature.
//
// Thread-safety: values; thread-compatible like any std type.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// RILL_ASSERT checks preconditions whose violation is a bug in the caller, not an
// environmental failure. It stays on in release builds: a broken invariant in a storage
// engine must stop the process rather than write garbage. Define RILL_NO_ASSERT to remove it.
#ifndef RILL_NO_ASSERT
#define RILL_ASSERT(cond, msg)                                                               \
  do {                                                                                       \
    if (!(cond)) [[unlikely]] {                                                              \
      std::fprintf(stderr, "rill: assertion failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, msg);                                                              \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
#else
#define RILL_ASSERT(cond, msg) ((void)0)
#endif

namespace rill {

// What went wrong, coarse enough to branch on. The message says the rest.
enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,  // bad input from the caller: a bad config, a bad name
  kOutOfRange,       // an offset or partition outside what exists
  kRecordTooLarge,   // a record over the configured maximum
  kNotFound,         // a topic, file or group that does not exist
  kAlreadyExists,    // creating something that is already there
  kCorruption,       // on-disk data failed a check (CRC, magic, structure)
  kIoError,          // a system call failed (open, mmap, fallocate, fsync, ...)
  kNoSpace,          // the disk is full: ENOSPC/EDQUOT while growing a file
  kLocked,           // another process or broker holds the directory
  kTimeout,          // a wait ran out of time
  kClosed,           // the object was closed or is shutting down
  kFenced,           // a stale member or generation (consumer groups)
  kUnsupported,      // the format version or feature is not supported
  kInterrupted,      // a blocking call was broken off by wakeup()
  kConflict,         // a conditional append found another end offset than expected
};

constexpr std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kOutOfRange:
      return "out of range";
    case ErrorCode::kRecordTooLarge:
      return "record too large";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kCorruption:
      return "corruption";
    case ErrorCode::kIoError:
      return "I/O error";
    case ErrorCode::kNoSpace:
      return "no space";
    case ErrorCode::kLocked:
      return "locked";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kClosed:
      return "closed";
    case ErrorCode::kFenced:
      return "fenced";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInterrupted:
      return "interrupted";
    case ErrorCode::kConflict:
      return "conflict";
  }
  return "unknown";
}

// An error: a code to branch on and a message for people ("segment 00000000000000000042.log:
// frame at position 4096 has a bad CRC").
class Error {
 public:
  Error() = default;
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "corruption: segment ...": the code's name, then the message.
  std::string to_string() const {
    std::string out(rill::to_string(code_));
    if (!message_.empty()) {
      out += ": ";
      out += message_;
    }
    return out;
  }

  friend bool operator==(const Error& a, ErrorCode c) noexcept { return a.code_ == c; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Tag to construct a failed Result from an Error (like std::unexpected).
struct Unexpected {
  Error error;
};
inline Unexpected fail(ErrorCode code, std::string message) {
  return Unexpected{Error(code, std::move(message))};
}
inline Unexpected fail(Error error) { return Unexpected{std::move(error)}; }

// Result<T>: a T or an Error. Accessing the value of a failed Result (or the error of a
// successful one) is a bug and aborts via RILL_ASSERT, since rill builds without exceptions.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  using value_type = T;
  using error_type = Error;

  template <typename U = T,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::remove_cvref_t<U>, Result> &&
                                        !std::is_same_v<std::remove_cvref_t<U>, Unexpected>>>
  // Explicit where T's constructor from U is (as std::expected's): `return n;` from a function
  // returning Result<std::vector<T>> built a vector of n elements.
  explicit(!std::is_convertible_v<U&&, T>) Result(U&& value)
      : ok_(true) {  // NOLINT: as std::expected
    ::new (static_cast<void*>(&value_)) T(std::forward<U>(value));
  }
  Result(Unexpected u) : ok_(false) {  // NOLINT(google-explicit-constructor)
    ::new (static_cast<void*>(&error_)) Error(std::move(u.error));
  }
  Result(const Result& other) : ok_(other.ok_) {
    if (ok_) {
      ::new (static_cast<void*>(&value_)) T(other.value_);
    } else {
      ::new (static_cast<void*>(&error_)) Error(other.error_);
    }
  }
  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(other.ok_) {
    if (ok_) {
      ::new (static_cast<void*>(&value_)) T(std::move(other.value_));
    } else {
      ::new (static_cast<void*>(&error_)) Error(std::move(other.error_));
    }
  }
  Result& operator=(const Result& other) {
    if (this != &other) {
      destroy();
      ::new (static_cast<void*>(this)) Result(other);
    }
    return *this;
  }
  Result& operator=(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &other) {
      destroy();
      ::new (static_cast<void*>(this)) Result(std::move(other));
    }
    return *this;
  }
  ~Result() { destroy(); }

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }

  T& value() & {
    RILL_ASSERT(ok_, "value() of a failed Result");
    return value_;
  }
  const T& value() const& {
    RILL_ASSERT(ok_, "value() of a failed Result");
    return value_;
  }
  T&& value() && {
    RILL_ASSERT(ok_, "value() of a failed Result");
    return std::move(value_);
  }
  const Error& error() const& {
    RILL_ASSERT(!ok_, "error() of a successful Result");
    return error_;
  }
  Error&& error() && {
    RILL_ASSERT(!ok_, "error() of a successful Result");
    return std::move(error_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok_ ? value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void destroy() noexcept {
    if (ok_) {
      value_.~T();
    } else {
      error_.~Error();
    }
  }

  bool ok_;
  union {
    T value_;
    Error error_;
  };
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  using error_type = Error;

  Result() = default;
  Result(Unexpected u) : ok_(false), error_(std::move(u.error)) {}  // NOLINT

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  void value() const { RILL_ASSERT(ok_, "value() of a failed Result"); }
  const Error& error() const& {
    RILL_ASSERT(!ok_, "error() of a successful Result");
    return error_;
  }
  Error&& error() && {
    RILL_ASSERT(!ok_, "error() of a successful Result");
    return std::move(error_);
  }

 private:
  bool ok_ = true;
  Error error_;
};

// RILL_TRY(expr): evaluate a Result<void> expression and return its error from the
// enclosing function if it failed.
#define RILL_TRY(expr)                                          \
  do {                                                          \
    auto rill_try_result_ = (expr);                             \
    if (!rill_try_result_.has_value()) [[unlikely]]             \
      return ::rill::fail(std::move(rill_try_result_).error()); \
  } while (0)

}  // namespace rill
