// Small file helpers shared by the fuzz targets (index, topic config, offset commits). No
// Catch2, no rill internals: header-only, for the libFuzzer binaries and the replay test.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace rill_fuzz {

using Bytes = std::vector<std::uint8_t>;

// xorshift64: the seeds' deterministic "random" record shapes.
struct XorShift {
  std::uint64_t x;
  std::uint64_t operator()() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  }
};

inline Bytes read_bytes(const std::string& path) {
  Bytes b;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
      b.insert(b.end(), buf, buf + n);
    std::fclose(f);
  }
  return b;
}

// False when the file could not be written whole (a full scratch disk: nothing to test).
inline bool write_bytes(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

// Removes everything under `dir` (not `dir` itself). Fuzz scratch trees are shallow.
inline void remove_tree_contents(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    const std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      remove_tree_contents(p);
      ::rmdir(p.c_str());
    } else {
      ::unlink(p.c_str());
    }
  }
}

// A fresh scratch directory: under $TMPDIR, else /dev/shm (the targets open thousands of
// files; tmpfs keeps that fast), else /tmp.
inline std::string make_scratch_dir(const char* what) {
  std::string root = "/tmp";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
    root = t;
  } else if (::access("/dev/shm", W_OK | X_OK) == 0) {
    root = "/dev/shm";
  }
  std::string tmpl = root + "/rill-" + what + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

}  // namespace rill_fuzz
