// rill/serde.hpp: how typed topics turn keys and values into bytes and back.
//
// A typed topic `Topic<K, V>` stores bytes; `rill::Serde<T>` says how a T becomes bytes and how
// bytes become a T. rill ships serdes for strings, byte buffers, fixed-width numbers, bool and
// trivially copyable structs; users specialize `Serde` for their own types. A serde is three
// static functions:
//
//   static std::string name();
//       The serde's identity, stored in the topic's config. Opening a topic with a type whose
//       serde has another name is refused, so the name must be stable across compilers, builds
//       and runs: a literal such as "string", "int32", "my.Order/v1", never typeid().name().
//   static Result<std::string_view> serialize(const T& v, std::string& scratch);
//       The bytes of `v`. They point either into `v` itself (zero-copy: std::string,
//       std::vector<std::byte>) or into `scratch`, which the serde may overwrite (numbers,
//       your own encodings). Either way they stay valid until `v` or `scratch` changes.
//       Error: ErrorCode::kInvalidArgument when the value cannot be serialized.
//   static Result<T> deserialize(std::string_view bytes);
//       A T from bytes. Error: ErrorCode::kCorruption, with a message saying what did not
//       fit ("int32 needs exactly 4 bytes, got 3"), when the bytes are not a valid T.
//
// Example: a user type with a text encoding "<id>,<qty>".
//
//   struct Order { std::int64_t id; std::int32_t qty; };
//
//   template <>
//   struct rill::Serde<Order> {
//     static std::string name() { return "example.Order/text-v1"; }
//     static rill::Result<std::string_view> serialize(const Order& o, std::string& scratch) {
//       if (o.qty < 0) return rill::fail(rill::ErrorCode::kInvalidArgument, "negative qty");
//       scratch = std::to_string(o.id) + "," + std::to_string(o.qty);
//       return std::string_view(scratch);
//     }
//     static rill::Result<Order> deserialize(std::string_view bytes) {
//       Order o{};
//       // ... parse with std::from_chars; on failure:
//       //   return rill::fail(rill::ErrorCode::kCorruption, "Order: expected <id>,<qty>");
//       return o;
//     }
//   };
//   static_assert(rill::SerdeFor<Order>);
//
// Built-in serdes and their names:
//
//   type                                         name          bytes
//   std::string, std::string_view                "string"      as they are (UTF-8 by
//                                                               convention; not validated)
//   std::vector<std::byte>,                      "bytes"       as they are
//     std::vector<std::uint8_t>,
//     std::span<const std::byte>
//   std::int8_t .. std::int64_t                  "int8" ..     big-endian two's complement
//   std::uint8_t .. std::uint64_t                "uint8" ..    big-endian
//   float, double                                "float32",    big-endian IEEE 754
//                                                "float64"
//   bool                                         "bool"        one byte, 0x01 or 0x00
//   other trivially copyable structs             "trivial:"    the object representation,
//                                                 + SerdeName   host byte order (see below)
//
// Kafka compatibility: numbers are written exactly as Kafka's Java ShortSerializer,
// IntegerSerializer, LongSerializer, FloatSerializer, DoubleSerializer and BooleanSerializer
// write them (big-endian; a double NaN is written as the canonical NaN 0x7FF8000000000000, as
// Java's Double.doubleToLongBits does; a float is written with its raw bits, as
// Float.floatToRawIntBits does), so bytes written by rill are read correctly by Kafka's
// deserializers, and the other way round. Java has no unsigned types: an uint32 read with
// IntegerDeserializer comes out as the signed int with the same bits. Built-in type names
// map by size and signedness, not by spelling: `long` and `long long` are both "int64" where
// both are 8 bytes; `char` is "int8" or "uint8" as the platform's char is signed or not.
// `long double` (no portable width) and enums have no built-in serde: specialize Serde, or
// store the underlying type.
//
// Strings and byte buffers are serialized without a copy. std::string_view and
// std::span<const std::byte> also deserialize without a copy: the result points into the
// bytes given to deserialize (for a record read from a topic, into the mapped segment), and is
// valid only as long as those bytes are.
//
// Trivially copyable structs (any trivially copyable class type without a more specific
// serde) are copied byte for byte in host byte order: little-endian on every host rill
// supports (x86-64, AArch64). That is fast but not portable: another ABI, another compiler's
// layout or a changed struct reads garbage; padding bytes are copied as they happen to be in
// memory, so two equal values with padding can have different bytes (do not use such a type
// as a key: keys decide partitions and compaction by their bytes). Pointers inside the struct
// are copied as addresses, which is meaningless in the log (std::span and std::basic_string_view
// are excluded for that reason; your own pointer-holding structs need their own Serde). The
// name is "trivial:" + SerdeName<T>::value when the user gives one, else "trivial:<sizeof T>":
// C++ has no portable, stable type name (typeid().name() differs between compilers and is
// mangled), so without a given name a topic can only check the size. Two structs of the same
// size then open each other's topics, and bytes written by one, read as the other, may hold
// values its members cannot take: a bool that is neither true nor false, an enum outside its
// range, which is undefined behaviour to use. Give such structs a SerdeName, or a Serde that
// checks them.
//
//   template <>
//   struct rill::SerdeName<Point> {
//     static constexpr std::string_view value = "geo.Point";  // name: "trivial:geo.Point"
//   };
//
// Nullable keys and values: std::optional<T>. std::nullopt is a null in the log (a missing
// key; for a value, a tombstone, which compaction treats as a delete), distinct from an empty
// string. The helpers rill::serde::encode / decode / serde_name apply that rule over any
// serde; the typed layer uses them for keys and values.
//
// Thread-safety: every built-in serde is a set of static functions without state: safe from
// any thread. User specializations must be too (the typed layer calls them from the
// producer's and consumer's threads).
//
// Cost: numbers and structs: a store into `scratch` (no allocation: at most 8 bytes, within
// std::string's small buffer, for numbers); strings and byte buffers: none on serialize, and a
// copy (an allocation) on deserialize into an owning type; none into string_view or span.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rill/result.hpp"

namespace rill {

// The serde of T. Undefined on purpose: a type without a specialization (built-in or yours)
// cannot be a key or a value, and using it fails at compile time.
template <typename T>
struct Serde;

// The stable name of a trivially copyable struct for its generic serde. Specialize it with
//   static constexpr std::string_view value = "my.Order";
// Without it the serde's name is "trivial:<sizeof(T)>".
template <typename T>
struct SerdeName {};

// T has a complete serde: name, serialize and deserialize with the signatures above.
template <typename T>
concept SerdeFor = requires(const T& value, std::string& scratch, std::string_view bytes) {
  { Serde<T>::name() } -> std::convertible_to<std::string>;
  { Serde<T>::serialize(value, scratch) } -> std::same_as<Result<std::string_view>>;
  { Serde<T>::deserialize(bytes) } -> std::same_as<Result<T>>;
};

namespace detail {

template <typename T>
struct IsOptional : std::false_type {};
template <typename U>
struct IsOptional<std::optional<U>> : std::true_type {};

// Standard views that hold pointers: their object representation means nothing in a log.
template <typename T>
struct IsStdView : std::false_type {};
template <typename E, std::size_t N>
struct IsStdView<std::span<E, N>> : std::true_type {};
template <typename C, typename Tr>
struct IsStdView<std::basic_string_view<C, Tr>> : std::true_type {};

// Numbers with a built-in big-endian serde: integers of 1, 2, 4 or 8 bytes other than bool,
// and IEEE 754 float and double.
template <typename T>
concept FixedWidthNumber = std::is_same_v<T, std::remove_cv_t<T>> && !std::is_same_v<T, bool> &&
                           ((std::is_integral_v<T> && (sizeof(T) == 1 || sizeof(T) == 2 ||
                                                       sizeof(T) == 4 || sizeof(T) == 8)) ||
                            (std::is_floating_point_v<T> && std::numeric_limits<T>::is_iec559 &&
                             (sizeof(T) == 4 || sizeof(T) == 8)));

// Structs for the generic memcpy serde: trivially copyable class types that no more specific
// serde claims (optionals are nullability, not a struct; standard views hold pointers).
template <typename T>
concept TriviallyCopyableStruct =
    std::is_same_v<T, std::remove_cv_t<T>> && std::is_class_v<T> &&
    std::is_trivially_copyable_v<T> && std::is_move_constructible_v<T> && !IsOptional<T>::value &&
    !IsStdView<T>::value;

template <typename T>
concept HasSerdeName = requires {
  { SerdeName<T>::value } -> std::convertible_to<std::string_view>;
};

// Unsigned integer with the width of T.
template <std::size_t N>
struct UnsignedOfSize;
template <>
struct UnsignedOfSize<1> {
  using type = std::uint8_t;
};
template <>
struct UnsignedOfSize<2> {
  using type = std::uint16_t;
};
template <>
struct UnsignedOfSize<4> {
  using type = std::uint32_t;
};
template <>
struct UnsignedOfSize<8> {
  using type = std::uint64_t;
};

template <typename T>
std::string number_name() {
  if constexpr (std::is_floating_point_v<T>) {
    return sizeof(T) == 4 ? "float32" : "float64";
  } else {
    std::string name = std::is_signed_v<T> ? "int" : "uint";
    name += std::to_string(sizeof(T) * 8);
    return name;
  }
}

inline std::string size_mismatch(std::string_view type, std::size_t want, std::size_t got) {
  std::string msg(type);
  msg += " needs exactly ";
  msg += std::to_string(want);
  msg += want == 1 ? " byte, got " : " bytes, got ";
  msg += std::to_string(got);
  return msg;
}

inline std::string_view as_chars(const void* data, std::size_t n) noexcept {
  return std::string_view(static_cast<const char*>(data), n);
}

}  // namespace detail

// --- strings ---------------------------------------------------------------------------------

// Bytes as they are. Zero-copy serialize; deserialize copies into the new string.
template <>
struct Serde<std::string> {
  static std::string name() { return "string"; }
  static Result<std::string_view> serialize(const std::string& v, std::string& /*scratch*/) {
    return std::string_view(v);
  }
  static Result<std::string> deserialize(std::string_view bytes) { return std::string(bytes); }
};

// The same bytes and name as std::string, so a topic written with one opens with the other.
// Zero-copy both ways: deserialize returns a view of `bytes` itself.
template <>
struct Serde<std::string_view> {
  static std::string name() { return "string"; }
  static Result<std::string_view> serialize(const std::string_view& v, std::string& /*scratch*/) {
    return v;
  }
  static Result<std::string_view> deserialize(std::string_view bytes) { return bytes; }
};

// --- byte buffers ----------------------------------------------------------------------------

// Raw bytes, like Kafka's ByteArraySerializer. Zero-copy serialize; deserialize copies.
template <>
struct Serde<std::vector<std::byte>> {
  static std::string name() { return "bytes"; }
  static Result<std::string_view> serialize(const std::vector<std::byte>& v,
                                            std::string& /*scratch*/) {
    return detail::as_chars(v.data(), v.size());
  }
  static Result<std::vector<std::byte>> deserialize(std::string_view bytes) {
    const auto* p = reinterpret_cast<const std::byte*>(bytes.data());
    return std::vector<std::byte>(p, p + bytes.size());
  }
};

// As std::vector<std::byte>, for code that keeps bytes as uint8_t.
template <>
struct Serde<std::vector<std::uint8_t>> {
  static std::string name() { return "bytes"; }
  static Result<std::string_view> serialize(const std::vector<std::uint8_t>& v,
                                            std::string& /*scratch*/) {
    return detail::as_chars(v.data(), v.size());
  }
  static Result<std::vector<std::uint8_t>> deserialize(std::string_view bytes) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    return std::vector<std::uint8_t>(p, p + bytes.size());
  }
};

// Raw bytes without a copy either way: deserialize returns a span over `bytes` itself.
template <>
struct Serde<std::span<const std::byte>> {
  static std::string name() { return "bytes"; }
  static Result<std::string_view> serialize(const std::span<const std::byte>& v,
                                            std::string& /*scratch*/) {
    return detail::as_chars(v.data(), v.size());
  }
  static Result<std::span<const std::byte>> deserialize(std::string_view bytes) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()),
                                      bytes.size());
  }
};

// --- numbers ---------------------------------------------------------------------------------

// Fixed-width integers and IEEE floats, big-endian as Kafka's Java serializers write them.
// Named by size and signedness ("int32", "uint64", "float64"), whatever the C++ spelling.
template <typename T>
requires detail::FixedWidthNumber<T>
struct Serde<T> {
  static std::string name() { return detail::number_name<T>(); }

  static Result<std::string_view> serialize(const T& v, std::string& scratch) {
    using U = typename detail::UnsignedOfSize<sizeof(T)>::type;
    U bits = std::bit_cast<U>(v);
    if constexpr (std::is_same_v<T, double>) {
      // Java's DoubleSerializer uses doubleToLongBits, which folds every NaN into this one.
      if (std::isnan(v)) bits = 0x7FF8000000000000u;
    }
    scratch.resize(sizeof(T));
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      scratch[sizeof(T) - 1 - i] = static_cast<char>(static_cast<unsigned char>(bits & 0xFFu));
      if constexpr (sizeof(T) > 1) bits = static_cast<U>(bits >> 8);
    }
    return std::string_view(scratch);
  }

  static Result<T> deserialize(std::string_view bytes) {
    using U = typename detail::UnsignedOfSize<sizeof(T)>::type;
    if (bytes.size() != sizeof(T)) {
      return fail(ErrorCode::kCorruption, detail::size_mismatch(name(), sizeof(T), bytes.size()));
    }
    U bits = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      if constexpr (sizeof(T) > 1) bits = static_cast<U>(bits << 8);
      bits = static_cast<U>(bits | static_cast<unsigned char>(bytes[i]));
    }
    return std::bit_cast<T>(bits);
  }
};

// One byte, 0x01 for true and 0x00 for false, as Kafka's BooleanSerializer; any other byte is
// refused, as Kafka's BooleanDeserializer does.
template <>
struct Serde<bool> {
  static std::string name() { return "bool"; }
  static Result<std::string_view> serialize(const bool& v, std::string& scratch) {
    scratch.assign(1, v ? '\x01' : '\x00');
    return std::string_view(scratch);
  }
  static Result<bool> deserialize(std::string_view bytes) {
    if (bytes.size() != 1) {
      return fail(ErrorCode::kCorruption, detail::size_mismatch("bool", 1, bytes.size()));
    }
    const auto b = static_cast<unsigned char>(bytes[0]);
    if (b > 1) {
      constexpr char kHex[] = "0123456789abcdef";
      std::string msg = "bool must be the byte 0x00 or 0x01, got 0x";
      msg += kHex[b >> 4];
      msg += kHex[b & 0xF];
      return fail(ErrorCode::kCorruption, std::move(msg));
    }
    return b == 1;
  }
};

// --- trivially copyable structs --------------------------------------------------------------

// The object representation, byte for byte, host byte order (not portable; see the top of
// this file). Named "trivial:" + SerdeName<T>::value, or "trivial:<sizeof(T)>".
template <typename T>
requires detail::TriviallyCopyableStruct<T>
struct Serde<T> {
  static std::string name() {
    std::string n = "trivial:";
    if constexpr (detail::HasSerdeName<T>) {
      n += std::string_view(SerdeName<T>::value);
    } else {
      n += std::to_string(sizeof(T));
    }
    return n;
  }

  static Result<std::string_view> serialize(const T& v, std::string& scratch) {
    scratch.resize(sizeof(T));
    std::memcpy(scratch.data(), &v, sizeof(T));
    return std::string_view(scratch);
  }

  static Result<T> deserialize(std::string_view bytes) {
    if (bytes.size() != sizeof(T)) {
      return fail(ErrorCode::kCorruption, detail::size_mismatch(name(), sizeof(T), bytes.size()));
    }
    std::array<unsigned char, sizeof(T)> raw;
    static_assert(sizeof(raw) == sizeof(T));
    std::memcpy(raw.data(), bytes.data(), sizeof(T));
    return std::bit_cast<T>(raw);
  }
};

// --- nullable keys and values ----------------------------------------------------------------

namespace serde {

// True for std::optional<U>: a type whose null (std::nullopt) is a null in the log.
template <typename T>
inline constexpr bool is_nullable_v = detail::IsOptional<T>::value;

// The type whose Serde makes the bytes: U for std::optional<U>, T otherwise.
template <typename T>
struct Inner {
  using type = T;
};
template <typename U>
struct Inner<std::optional<U>> {
  using type = U;
};
template <typename T>
using inner_t = typename Inner<T>::type;

// T can be a key or value type: it has a serde, or it is std::optional of a type that has
// one. (std::optional<std::optional<U>> is not: the log has one null, not two.)
template <typename T>
concept Encodable = SerdeFor<inner_t<T>>;

// The name recorded in a topic's config for key or value type T. Nullability is a property of
// how records are read, not of their bytes, so serde_name<std::optional<U>>() ==
// serde_name<U>(): a topic written with V opens with std::optional<V> and the other way round
// (reading a tombstone as a plain V is then an error from decode, not a refused topic).
// Thread-safe; allocates the string.
template <Encodable T>
std::string serde_name() {
  return Serde<inner_t<T>>::name();
}

// The bytes of a key or value: std::nullopt (a null in the log) for a disengaged
// std::optional, else what Serde<inner_t<T>>::serialize returns (pointing into `v` or into
// `scratch`; use one scratch string per key and value). Errors: those of the serde
// (kInvalidArgument). Thread-safe for distinct scratch strings. Cost: the serde's.
template <Encodable T>
Result<std::optional<std::string_view>> encode(const T& v, std::string& scratch) {
  if constexpr (is_nullable_v<T>) {
    if (!v.has_value()) return std::optional<std::string_view>();
    return encode<inner_t<T>>(*v, scratch);
  } else {
    Result<std::string_view> bytes = Serde<T>::serialize(v, scratch);
    if (!bytes.has_value()) return fail(std::move(bytes).error());
    return std::optional<std::string_view>(*bytes);
  }
}

// A key or value from the bytes of a record: std::nullopt for a null when T is a
// std::optional, else Serde<inner_t<T>>::deserialize. Errors: kCorruption when the bytes are
// null and T is not nullable ("null value for non-nullable type int32 ..."), or when the serde
// refuses the bytes. Zero-copy types (std::string_view, std::span<const std::byte>) point into
// `bytes`. Thread-safe. Cost: the serde's.
template <Encodable T>
Result<T> decode(std::optional<std::string_view> bytes) {
  if constexpr (is_nullable_v<T>) {
    if (!bytes.has_value()) return T(std::nullopt);
    Result<inner_t<T>> v = Serde<inner_t<T>>::deserialize(*bytes);
    if (!v.has_value()) return fail(std::move(v).error());
    return T(std::move(*v));
  } else {
    if (!bytes.has_value()) {
      return fail(ErrorCode::kCorruption, "null value for non-nullable type " + Serde<T>::name() +
                                              " (a tombstone or a missing key: read it as "
                                              "std::optional)");
    }
    return Serde<T>::deserialize(*bytes);
  }
}

}  // namespace serde
}  // namespace rill
