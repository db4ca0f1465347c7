// rill/detail/mmap_file.hpp: thin RAII wrappers over POSIX files and memory mappings.
//
// Nothing here has a public meaning; the storage layer uses it to keep segment and index files
// mapped. Every failing system call becomes a rill::Error naming the call, the path and
// strerror(errno), so a caller can tell "disk full" from "permission denied" from a bug.
//
// Every call that can fail for lack of space or a bad disk (open, grow, truncate, write, sync,
// rename, mkdir, mmap, and unlink through remove_file) first asks the process-wide fault hook
// (set_fault_hook), which tests use to fail the Nth call of a kind with ENOSPC or EIO; with no hook
// set (always, outside tests) that costs one load and one predictable branch per call, and none of
// these calls is on the append path except when a segment rolls or a sync runs.
//
// Files are opened with O_NOFOLLOW: a symbolic link where rill expects one of its own files is
// refused (kIoError naming it), never followed out of the data directory.
//
// Thread-safety: File and Mapping are single-owner handles; the bytes they map are shared and
// their synchronisation is the caller's business. The fault hook is thread-safe.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "rill/result.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14+; older kernels answer EINVAL and we do without
#endif

namespace rill::detail {

// Maps errno of a failed call to an ErrorCode: running out of room is kNoSpace, so callers and
// tests can tell a full disk (or a file-size limit) from other I/O failures.
inline ErrorCode errno_code(int err) noexcept {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return ErrorCode::kNoSpace;
    case ENOENT:
      return ErrorCode::kNotFound;
    case EEXIST:
      return ErrorCode::kAlreadyExists;
    default:
      return ErrorCode::kIoError;
  }
}

inline Unexpected sys_error(const char* call, const std::string& path, int err) {
  std::string msg(call);
  msg += "(";
  msg += path;
  msg += "): ";
  msg += std::strerror(err);
  return fail(errno_code(err), std::move(msg));
}

// Permissions of what rill creates, before the umask: owner-only unless configured otherwise
// (storage::LogConfig, BrokerOptions), since a data directory holds the application's data.
inline constexpr mode_t kDefaultFileMode = 0600;
inline constexpr mode_t kDefaultDirMode = 0700;

// --- fault injection ---------------------------------------------------------------------------

// The kinds of file-system call the fault hook can fail.
enum class FileOp : int {
  kOpen,      // open(2) of any file (creating ones too)
  kGrow,      // posix_fallocate: preallocating a segment or an index
  kTruncate,  // ftruncate
  kWrite,     // pwrite
  kSync,      // fdatasync, fsync (files and directories), msync
  kRename,    // rename(2)
  kMkdir,     // mkdir(2)
  kMap,       // mmap of a file
  kRemove,    // unlink(2) through remove_file
};
inline constexpr int kFileOpCount = 9;

// Called before each such call with its kind and path ("" for msync); returns 0 to let the
// call run, or an errno value (ENOSPC, EIO, ...) to fail it with, without making the call.
// Must be thread-safe: background threads sync and retention deletes.
using FaultHook = int (*)(FileOp op, const char* path) noexcept;

namespace fault_detail {
// acquire/release: pairs the hook's installation with its use, so a hook's own state, set up
// before set_fault_hook, is visible to the threads that call it.
inline std::atomic<FaultHook> hook{nullptr};
}  // namespace fault_detail

// Installs (or, with nullptr, removes) the process-wide fault hook. For tests.
inline void set_fault_hook(FaultHook hook) noexcept {
  fault_detail::hook.store(hook, std::memory_order_release);
}

// 0, or the errno the hook wants the call `op` on `path` to fail with.
inline int injected_fault(FileOp op, const char* path) noexcept {
  const FaultHook h = fault_detail::hook.load(std::memory_order_acquire);
  if (h == nullptr) [[likely]]
    return 0;
  return h(op, path);
}
inline int injected_fault(FileOp op, const std::string& path) noexcept {
  return injected_fault(op, path.c_str());
}

// An open file descriptor, closed on destruction.
class File {
 public:
  File() = default;
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  File(File&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}
  File& operator=(File&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
      path_ = std::move(o.path_);
    }
    return *this;
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() { close(); }

  // Opens `path` with open(2) flags; O_CLOEXEC is always added, and O_NOFOLLOW unless it is a
  // directory: a symbolic link in place of a file is refused, not followed. `mode` (before the
  // umask) applies when the file is created.
  static Result<File> open(const std::string& path, int flags, mode_t mode = kDefaultFileMode) {
    if (int err = injected_fault(FileOp::kOpen, path)) return sys_error("open", path, err);
    if ((flags & O_DIRECTORY) == 0) flags |= O_NOFOLLOW;
    int fd;
    do {
      fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW) != 0) {
      return fail(ErrorCode::kIoError, "open(" + path +
                                           "): is a symbolic link; rill does not follow links "
                                           "inside its data directory");
    }
    if (fd < 0) return sys_error("open", path, errno);
    return File(fd, path);
  }

  bool valid() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }

  Result<std::uint64_t> size() const {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return sys_error("fstat", path_, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  // Reserves disk blocks for [0, bytes) and extends the file to `bytes`, so later writes
  // through a mapping cannot fail for lack of space (which would be a SIGBUS, not an error).
  Result<void> allocate(std::uint64_t bytes) {
    if (int err = injected_fault(FileOp::kGrow, path_))
      return sys_error("posix_fallocate", path_, err);
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(bytes));
    if (rc != 0) return sys_error("posix_fallocate", path_, rc);
    return {};
  }

  Result<void> truncate(std::uint64_t bytes) {
    if (int err = injected_fault(FileOp::kTruncate, path_))
      return sys_error("ftruncate", path_, err);
    if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) {
      return sys_error("ftruncate", path_, errno);
    }
    return {};
  }

  Result<void> sync_data() {
    if (int err = injected_fault(FileOp::kSync, path_)) return sys_error("fdatasync", path_, err);
    if (::fdatasync(fd_) != 0) return sys_error("fdatasync", path_, errno);
    return {};
  }

  // fsync: data and metadata (size, and for a directory its entries).
  Result<void> sync() {
    if (int err = injected_fault(FileOp::kSync, path_)) return sys_error("fsync", path_, err);
    if (::fsync(fd_) != 0) return sys_error("fsync", path_, errno);
    return {};
  }

  Result<void> pwrite_all(const void* data, std::size_t n, std::uint64_t pos) {
    if (int err = injected_fault(FileOp::kWrite, path_)) return sys_error("pwrite", path_, err);
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(pos));
      if (w < 0) {
        if (errno == EINTR) continue;
        return sys_error("pwrite", path_, errno);
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      pos += static_cast<std::uint64_t>(w);
    }
    return {};
  }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// A memory mapping, unmapped on destruction. Either of a file (MAP_SHARED: writes go to the
// page cache and survive the process) or anonymous (in-memory logs).
class Mapping {
 public:
  Mapping() = default;
  Mapping(Mapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }

  // Maps `size` bytes of `file` from position 0. The mapping may extend past the file's end;
  // touching pages wholly past the end raises SIGBUS, so callers never read beyond what they
  // have published.
  static Result<Mapping> map_file(const File& file, std::size_t size, bool writable) {
    if (int err = injected_fault(FileOp::kMap, file.path()))
      return sys_error("mmap", file.path(), err);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void* p = ::mmap(nullptr, size, prot, MAP_SHARED, file.fd(), 0);
    if (p == MAP_FAILED) return sys_error("mmap", file.path(), errno);
    return Mapping(static_cast<std::byte*>(p), size);
  }

  // Zero-filled private memory of `size` bytes, committed lazily by the kernel.
  static Result<Mapping> map_anonymous(std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return sys_error("mmap", "<anonymous>", errno);
    return Mapping(static_cast<std::byte*>(p), size);
  }

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // Writes dirty pages of [from, to) back to the file and waits (MS_SYNC).
  Result<void> sync(std::size_t from, std::size_t to) const {
    if (to <= from) return {};
    const std::size_t page = page_size();
    const std::size_t start = from & ~(page - 1);
    if (int err = injected_fault(FileOp::kSync, "")) return sys_error("msync", "", err);
    if (::msync(data_ + start, to - start, MS_SYNC) != 0) return sys_error("msync", "", errno);
    return {};
  }

  // Faults in [from, to) as writable without changing its contents, so the writer's first
  // store to each page costs no page fault. Returns 0, or madvise's errno: EINVAL where the
  // kernel lacks MADV_POPULATE_WRITE (before Linux 5.14), EFAULT for pages past the end of
  // a file truncated meanwhile (no SIGBUS is raised), ENOMEM.
  int populate(std::size_t from, std::size_t to) const noexcept {
    const std::size_t page = page_size();
    from &= ~(page - 1);
    if (to > size_) to = size_;
    if (to <= from) return 0;
    return ::madvise(data_ + from, to - from, MADV_POPULATE_WRITE) == 0 ? 0 : errno;
  }

  static std::size_t page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return page;
  }

 private:
  Mapping(std::byte* data, std::size_t size) : data_(data), size_(size) {}
  void reset() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// fsync of a directory, so that a created, renamed or removed entry is itself durable.
inline Result<void> sync_directory(const std::string& dir) {
  auto f = File::open(dir, O_RDONLY | O_DIRECTORY);
  if (!f) return fail(std::move(f).error());
  return f->sync();
}

// rename(2), through the fault hook.
inline Result<void> rename_path(const std::string& from, const std::string& to) {
  if (int err = injected_fault(FileOp::kRename, from)) return sys_error("rename", from, err);
  if (::rename(from.c_str(), to.c_str()) != 0) return sys_error("rename", from, errno);
  return {};
}

// unlink(2), through the fault hook. A file that is not there counts as removed.
inline Result<void> remove_file(const std::string& path) {
  if (int err = injected_fault(FileOp::kRemove, path)) return sys_error("unlink", path, err);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error("unlink", path, errno);
  return {};
}

// Creates `path` and any missing parents with `mode` (before the umask); directories that
// exist are left as they are. Fails when `path` exists and is not a directory.
inline Result<void> create_directories(const std::string& path, mode_t mode = kDefaultDirMode) {
  if (path.empty()) return fail(ErrorCode::kInvalidArgument, "empty directory path");
  if (int err = injected_fault(FileOp::kMkdir, path)) return sys_error("mkdir", path, err);
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (!prefix.empty() && prefix.back() != '/' && ::mkdir(prefix.c_str(), mode) != 0 &&
        errno != EEXIST) {
      return sys_error("mkdir", prefix, errno);
    }
    if (slash == std::string::npos) break;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return sys_error("stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return sys_error("mkdir", path, ENOTDIR);
  return {};
}

// Refuses a symbolic link at `path` (a topic or partition directory): kIoError naming it.
// rill never follows a link inside its data directory, which could lead out of it.
inline Result<void> refuse_symlink(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return fail(ErrorCode::kIoError, path +
                                         " is a symbolic link; rill does not follow links inside "
                                         "its data directory");
  }
  return {};
}

}  // namespace rill::detail
