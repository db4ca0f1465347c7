// rill/detail/crc32c.hpp: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
//
// Two implementations with identical results:
//  - crc32c_portable: slicing-by-8 over tables built at compile time; any CPU.
//  - crc32c_hardware: the SSE4.2 `crc32` instruction, 8 bytes per instruction; x86-64 only,
//    compiled with a function-level target attribute so the library itself needs no -msse4.2.
// `rill::crc32c` picks the hardware path when the CPU reports SSE4.2 (checked once, at the
// first call), the portable one otherwise. Both are checked against the standard vectors in
// tests/crc32c_test.cpp (CRC-32C of "123456789" is 0xE3069283).
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <nmmintrin.h>
#define RILL_HAVE_CRC32C_HW 1
#else
#define RILL_HAVE_CRC32C_HW 0
#endif

namespace rill::detail {

inline constexpr std::uint32_t kCrc32cPoly = 0x82F63B78u;  // reflected 0x1EDC6F41

// tables[k][b]: CRC of byte b followed by k zero bytes; slicing-by-8 folds 8 input bytes
// per step with 8 lookups instead of 8 dependent shifts.
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_crc32c_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kCrc32cPoly : 0u);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::uint32_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  }
  return t;
}
inline constexpr auto kCrc32cTables = make_crc32c_tables();

// Continues a CRC: `crc` is the value returned for the preceding bytes (0 to start). Out of
// line: inlined into crc32c_extend, its registers would be saved and restored on every call
// of the hardware path too.
[[gnu::noinline]] inline std::uint32_t crc32c_portable(std::uint32_t crc, const void* data,
                                                       std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto& t = kCrc32cTables;
  std::uint32_t c = ~crc;
  while (n >= 8) {
    std::uint32_t lo = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                       (static_cast<std::uint32_t>(p[2]) << 16) |
                       (static_cast<std::uint32_t>(p[3]) << 24);
    std::uint32_t hi = static_cast<std::uint32_t>(p[4]) | (static_cast<std::uint32_t>(p[5]) << 8) |
                       (static_cast<std::uint32_t>(p[6]) << 16) |
                       (static_cast<std::uint32_t>(p[7]) << 24);
    lo ^= c;
    c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  return ~c;
}

#if RILL_HAVE_CRC32C_HW
// An unaligned 8-byte load; compiles to one mov, or to the memory operand of the crc32 using it.
inline std::uint64_t load_u64(const unsigned char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// The `crc32` instruction over [p, p + n) from register value `c` (no pre- or post-inversion).
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hw_raw(std::uint32_t c32,
                                                                     const unsigned char* p,
                                                                     std::size_t n) noexcept {
  std::uint64_t c = c32;
  // Four words per turn: the loop's own add, compare and branch are paid once per 32 bytes
  // instead of once per 8 (the chain of crc32 instructions is the same).
  while (n >= 32) {
    c = _mm_crc32_u64(c, load_u64(p));
    c = _mm_crc32_u64(c, load_u64(p + 8));
    c = _mm_crc32_u64(c, load_u64(p + 16));
    c = _mm_crc32_u64(c, load_u64(p + 24));
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, load_u64(p));
    p += 8;
    n -= 8;
  }
  c32 = static_cast<std::uint32_t>(c);
  if (n >= 4) {  // the tail in 4/2/1-byte steps: fewer dependent instructions than bytewise
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    c32 = _mm_crc32_u32(c32, w);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    c32 = _mm_crc32_u16(c32, w);
    p += 2;
    n -= 2;
  }
  if (n != 0) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}

// The register update over `kBlock` zero bytes, as four byte-indexed tables. A CRC register
// update is linear: raw(r, D) == raw(r, zeros(|D|)) ^ raw(0, D). So three blocks A, B, C of
// kBlock bytes each can be run as three independent instruction chains (the `crc32`
// instruction has a latency of 3 cycles and a throughput of 1 per cycle) and joined:
// raw(r, A B C) == shift(shift(raw(r, A)) ^ raw(0, B)) ^ raw(0, C).
template <std::size_t kBlock>
struct Crc32cShift {
  std::uint32_t table[4][256];

  Crc32cShift() noexcept {
    static constexpr unsigned char kZeros[kBlock] = {};
    for (std::uint32_t k = 0; k < 4; ++k) {
      for (std::uint32_t v = 0; v < 256; ++v) {
        table[k][v] = crc32c_hw_raw(v << (8 * k), kZeros, kBlock);
      }
    }
  }
  std::uint32_t operator()(std::uint32_t r) const noexcept {
    return table[0][r & 0xFFu] ^ table[1][(r >> 8) & 0xFFu] ^ table[2][(r >> 16) & 0xFFu] ^
           table[3][r >> 24];
  }
  static const Crc32cShift& get() noexcept {
    static const Crc32cShift shift;
    return shift;
  }
};

// Runs whole groups of three kBlock-byte blocks as three interleaved chains.
template <std::size_t kBlock>
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hw_3way(std::uint32_t c,
                                                                      const unsigned char*& p,
                                                                      std::size_t& n) noexcept {
  static_assert(kBlock % 8 == 0);
  if (n < 3 * kBlock) return c;
  const Crc32cShift<kBlock>& shift = Crc32cShift<kBlock>::get();
  while (n >= 3 * kBlock) {
    std::uint64_t a = c;
    std::uint64_t b = 0;
    std::uint64_t d = 0;
    // Two words of each block per turn, as in crc32c_hw_raw: less loop overhead.
    static_assert(kBlock % 16 == 0);
    for (std::size_t i = 0; i < kBlock; i += 16) {
      a = _mm_crc32_u64(a, load_u64(p + i));
      b = _mm_crc32_u64(b, load_u64(p + kBlock + i));
      d = _mm_crc32_u64(d, load_u64(p + 2 * kBlock + i));
      a = _mm_crc32_u64(a, load_u64(p + i + 8));
      b = _mm_crc32_u64(b, load_u64(p + kBlock + i + 8));
      d = _mm_crc32_u64(d, load_u64(p + 2 * kBlock + i + 8));
    }
    c = shift(shift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^
        static_cast<std::uint32_t>(d);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  return c;
}

// Folding with carry-less multiplication (VPCLMULQDQ on 512-bit registers), for long inputs:
// about four times the `crc32` instruction's 8 bytes per cycle. The idea (Intel's "Fast CRC
// Computation for Generic Polynomials Using PCLMULQDQ", for a bit-reflected CRC): 16 bytes A
// followed by F zero bytes leave the same CRC register as the 16 bytes
// clmul(A.lo64, k_lo(F)) ^ clmul(A.hi64, k_hi(F)), where k_lo(F) = x^(8F+31) mod P and
// k_hi(F) = x^(8F-33) mod P, bit-reflected (P the CRC-32C polynomial). Linearity does the rest:
// sixteen 16-byte lanes run 256 bytes apart, each folded forward over the next 256 bytes and
// XORed with them; at the end the lanes fold into one 16-byte value whose CRC from register 0
// is the CRC register of everything read, which two `crc32` instructions finish.
// The constants were derived and checked against crc32c_hw_raw (tests/crc32c_test.cpp
// compares every path against the portable table code).
struct Crc32cFold {
  std::uint64_t lo;  // k_lo(F)
  std::uint64_t hi;  // k_hi(F)
};
inline constexpr Crc32cFold kFold256{0xdcb17aa4, 0xb9e02b86};
inline constexpr Crc32cFold kFold192{0xa87ab8a8, 0xab7aff2a};
inline constexpr Crc32cFold kFold128{0x6992cea2, 0x0d3b6092};
inline constexpr Crc32cFold kFold64{0x740eef02, 0x9e4addf8};
inline constexpr Crc32cFold kFold48{0x1c291d04, 0xddc0152b};
inline constexpr Crc32cFold kFold32{0x3da6d0cb, 0xba4fc28e};
inline constexpr Crc32cFold kFold16{0xf20c0dfe, 0x493c7d27};

#define RILL_CRC32C_FOLD_TARGET "avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2"

// Whether the CPU (and the OS, for the 512-bit registers) can run crc32c_hw_fold.
inline bool crc32c_fold_available() noexcept {
  static const bool available =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul");
  return available;
}

// Helpers of crc32c_hw_fold (compiled for the same instructions, so they inline into it).
// (f.lo, f.hi) in every 128-bit lane.
__attribute__((target(RILL_CRC32C_FOLD_TARGET))) inline __m512i crc32c_fold_k(
    Crc32cFold f) noexcept {
  const auto lo = static_cast<long long>(f.lo);
  const auto hi = static_cast<long long>(f.hi);
  return _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
}
// a.lo * k.lo ^ a.hi * k.hi ^ d, lane by lane (0x96: three-way XOR).
__attribute__((target(RILL_CRC32C_FOLD_TARGET))) inline __m512i crc32c_fold512(__m512i a, __m512i k,
                                                                               __m512i d) noexcept {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),
                                   _mm512_clmulepi64_epi128(a, k, 0x11), d, 0x96);
}
__attribute__((target(RILL_CRC32C_FOLD_TARGET))) inline __m128i crc32c_fold128(__m128i a,
                                                                               Crc32cFold f,
                                                                               __m128i d) noexcept {
  const __m128i k = _mm_set_epi64x(static_cast<long long>(f.hi), static_cast<long long>(f.lo));
  return _mm_xor_si128(
      _mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), d);
}

// The CRC register after `c` and the whole 256-byte blocks at `p` (n >= 256); advances p and
// n past them.
[[gnu::noinline]] __attribute__((target(RILL_CRC32C_FOLD_TARGET))) inline std::uint32_t
crc32c_hw_fold(std::uint32_t c, const unsigned char*& p, std::size_t& n) noexcept {
  // The register's 4 bytes XOR into the first 4 data bytes: raw(c, D) == raw(0, D ^ c).
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p),
                                _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(c))));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += 256;
  n -= 256;
  const __m512i k256 = crc32c_fold_k(kFold256);
  while (n >= 256) {
    x0 = crc32c_fold512(x0, k256, _mm512_loadu_si512(p));
    x1 = crc32c_fold512(x1, k256, _mm512_loadu_si512(p + 64));
    x2 = crc32c_fold512(x2, k256, _mm512_loadu_si512(p + 128));
    x3 = crc32c_fold512(x3, k256, _mm512_loadu_si512(p + 192));
    p += 256;
    n -= 256;
  }
  // Four registers into one (their lanes 192, 128 and 64 bytes before x3's), then its four
  // lanes into one (48, 32 and 16 bytes before the last).
  const __m512i y = crc32c_fold512(
      x0, crc32c_fold_k(kFold192),
      crc32c_fold512(x1, crc32c_fold_k(kFold128), crc32c_fold512(x2, crc32c_fold_k(kFold64), x3)));
  // Through memory rather than _mm512_extracti32x4_epi32, whose GCC 12 header trips
  // -Wuninitialized at -O0.
  alignas(64) unsigned char lanes[64];
  _mm512_store_si512(lanes, y);
  const auto lane = [&lanes](int i) {
    return _mm_load_si128(reinterpret_cast<const __m128i*>(lanes + 16 * i));
  };
  const __m128i a =
      crc32c_fold128(lane(0), kFold48,
                     crc32c_fold128(lane(1), kFold32, crc32c_fold128(lane(2), kFold16, lane(3))));
  std::uint64_t r = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(a)));
  r = _mm_crc32_u64(r, static_cast<std::uint64_t>(_mm_extract_epi64(a, 1)));
  return static_cast<std::uint32_t>(r);
}

// crc32c_hw_raw over inputs of 192 bytes or more, three chains at a time where it can. Out of
// line so that the short inputs' path (a batch of one small record) stays a leaf function
// with no registers to save.
[[gnu::noinline]] __attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hw_long(
    std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
  // Folding pays for its setup (and its final reduction) from a few hundred bytes on.
  if (n >= 512 && crc32c_fold_available()) c = crc32c_hw_fold(c, p, n);
  c = crc32c_hw_3way<1024>(c, p, n);
  c = crc32c_hw_3way<64>(c, p, n);
  return crc32c_hw_raw(c, p, n);
}

// About 8 bytes per cycle on long inputs (three chains), 8 bytes per 3 cycles below 192 bytes.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hardware(std::uint32_t crc,
                                                                       const void* data,
                                                                       std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  if (n >= 3 * 64) return ~crc32c_hw_long(~crc, p, n);
  return ~crc32c_hw_raw(~crc, p, n);
}

inline bool crc32c_hardware_available() noexcept {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}
#else
inline std::uint32_t crc32c_hardware(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return crc32c_portable(crc, data, n);
}
inline bool crc32c_hardware_available() noexcept { return false; }
#endif

// Continues a CRC with the fastest implementation this CPU has.
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return crc32c_hardware_available() ? crc32c_hardware(crc, data, n)
                                     : crc32c_portable(crc, data, n);
}

}  // namespace rill::detail

namespace rill {

// CRC-32C of `n` bytes at `data`. Cost: about one cycle per 3 bytes with SSE4.2, about one per
// byte without.
inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return detail::crc32c_extend(0, data, n);
}

}  // namespace rill
