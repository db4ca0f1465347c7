// Serdes: names, exact bytes (Kafka's big-endian encodings), round trips, zero-copy views,
// nullability (tombstone vs empty), decode errors, user specializations.
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "rill/serde.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace serde_test {

namespace {

// A user type with a text encoding, as in the example at the top of serde.hpp.
struct Order {
  std::int64_t id;
  std::int32_t qty;
  bool operator==(const Order&) const = default;
};

// A trivially copyable struct without a SerdeName, and one with.
struct Point {
  std::int32_t x;
  std::int32_t y;
  bool operator==(const Point&) const = default;
};
struct Tagged {
  std::uint16_t a;
  std::uint16_t b;
  bool operator==(const Tagged&) const = default;
};

// Not trivially copyable and no Serde: not a key or value type.
struct Unserializable {
  std::string s;
};

}  // namespace

}  // namespace serde_test

template <>
struct rill::Serde<serde_test::Order> {
  using Order = serde_test::Order;
  static std::string name() { return "test.Order/text-v1"; }
  static rill::Result<std::string_view> serialize(const Order& o, std::string& scratch) {
    if (o.qty < 0) return rill::fail(rill::ErrorCode::kInvalidArgument, "Order: negative qty");
    scratch = std::to_string(o.id) + "," + std::to_string(o.qty);
    return std::string_view(scratch);
  }
  static rill::Result<Order> deserialize(std::string_view bytes) {
    Order o{};
    const char* end = bytes.data() + bytes.size();
    auto [p, ec] = std::from_chars(bytes.data(), end, o.id);
    if (ec != std::errc() || p == end || *p != ',') {
      return rill::fail(rill::ErrorCode::kCorruption, "Order: expected <id>,<qty>");
    }
    auto [q, ec2] = std::from_chars(p + 1, end, o.qty);
    if (ec2 != std::errc() || q != end) {
      return rill::fail(rill::ErrorCode::kCorruption, "Order: expected <id>,<qty>");
    }
    return o;
  }
};

template <>
struct rill::SerdeName<serde_test::Tagged> {
  static constexpr std::string_view value = "test.Tagged";
};

namespace serde_test {

namespace {

using rill::ErrorCode;
using rill::Serde;
using rill::SerdeFor;

// --- compile-time: which types have a serde ---------------------------------------------------
static_assert(SerdeFor<std::string>);
static_assert(SerdeFor<std::string_view>);
static_assert(SerdeFor<std::vector<std::byte>>);
static_assert(SerdeFor<std::vector<std::uint8_t>>);
static_assert(SerdeFor<std::span<const std::byte>>);
static_assert(SerdeFor<std::int8_t> && SerdeFor<std::int16_t> && SerdeFor<std::int32_t> &&
              SerdeFor<std::int64_t>);
static_assert(SerdeFor<std::uint8_t> && SerdeFor<std::uint16_t> && SerdeFor<std::uint32_t> &&
              SerdeFor<std::uint64_t>);
static_assert(SerdeFor<float> && SerdeFor<double> && SerdeFor<bool>);
static_assert(SerdeFor<char> && SerdeFor<long> && SerdeFor<long long> && SerdeFor<unsigned long>);
static_assert(SerdeFor<Order>);
static_assert(SerdeFor<Point>);
static_assert(SerdeFor<std::array<std::byte, 4>>);
// No serde: unknown non-trivial types, long double, enums, pointers, views that hold pointers,
// and std::optional (nullability is handled by serde::encode/decode, not by a Serde).
static_assert(!SerdeFor<Unserializable>);
static_assert(!SerdeFor<long double>);
static_assert(!SerdeFor<std::byte>);
static_assert(!SerdeFor<int*>);
static_assert(!SerdeFor<std::span<int>>);
static_assert(!SerdeFor<std::span<const std::byte, 4>>);
static_assert(!SerdeFor<std::u16string_view>);
static_assert(!SerdeFor<std::optional<int>>);
static_assert(!SerdeFor<const int>);
// Key and value types: a serde, or an optional of one (once).
static_assert(rill::serde::Encodable<std::optional<std::int32_t>>);
static_assert(rill::serde::Encodable<std::string>);
static_assert(!rill::serde::Encodable<std::optional<std::optional<int>>>);
static_assert(!rill::serde::Encodable<Unserializable>);
static_assert(rill::serde::is_nullable_v<std::optional<std::string>>);
static_assert(!rill::serde::is_nullable_v<std::string>);
static_assert(std::is_same_v<rill::serde::inner_t<std::optional<Point>>, Point>);

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) out += ' ';
    const auto b = static_cast<unsigned char>(bytes[i]);
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

template <typename T>
std::string bytes_of(const T& v) {
  std::string scratch;
  auto r = Serde<T>::serialize(v, scratch);
  REQUIRE(r.has_value());
  return std::string(*r);
}

template <typename T>
std::string hex_of(const T& v) {
  return hex(bytes_of(v));
}

template <typename T>
T round_trip(const T& v) {
  std::string scratch;
  auto bytes = Serde<T>::serialize(v, scratch);
  REQUIRE(bytes.has_value());
  REQUIRE(bytes->size() == sizeof(T));
  auto back = Serde<T>::deserialize(*bytes);
  REQUIRE(back.has_value());
  return *back;
}

template <typename T>
void check_integer_round_trips() {
  using L = std::numeric_limits<T>;
  for (T v : {L::min(), L::max(), T(0), T(1), static_cast<T>(L::max() / 3),
              static_cast<T>(L::min() + 1)}) {
    CAPTURE(+v);
    CHECK(round_trip(v) == v);
  }
}

}  // namespace

TEST_CASE("built-in serdes have stable names", "[serde]") {
  CHECK(Serde<std::string>::name() == "string");
  CHECK(Serde<std::string_view>::name() == "string");
  CHECK(Serde<std::vector<std::byte>>::name() == "bytes");
  CHECK(Serde<std::vector<std::uint8_t>>::name() == "bytes");
  CHECK(Serde<std::span<const std::byte>>::name() == "bytes");
  CHECK(Serde<std::int8_t>::name() == "int8");
  CHECK(Serde<std::int16_t>::name() == "int16");
  CHECK(Serde<std::int32_t>::name() == "int32");
  CHECK(Serde<std::int64_t>::name() == "int64");
  CHECK(Serde<std::uint8_t>::name() == "uint8");
  CHECK(Serde<std::uint16_t>::name() == "uint16");
  CHECK(Serde<std::uint32_t>::name() == "uint32");
  CHECK(Serde<std::uint64_t>::name() == "uint64");
  CHECK(Serde<float>::name() == "float32");
  CHECK(Serde<double>::name() == "float64");
  CHECK(Serde<bool>::name() == "bool");
}

TEST_CASE("number serde names follow size and signedness, not spelling", "[serde]") {
  CHECK(Serde<short>::name() == "int16");
  CHECK(Serde<unsigned short>::name() == "uint16");
  CHECK(Serde<int>::name() == "int32");
  CHECK(Serde<long long>::name() == "int64");
  CHECK(Serde<unsigned long long>::name() == "uint64");
  CHECK(Serde<long>::name() == (sizeof(long) == 8 ? "int64" : "int32"));
  CHECK(Serde<char>::name() == (std::is_signed_v<char> ? "int8" : "uint8"));
  CHECK(Serde<signed char>::name() == "int8");
  CHECK(Serde<unsigned char>::name() == "uint8");
}

TEST_CASE("integers are written big-endian as Kafka's Java serializers write them", "[serde]") {
  // IntegerSerializer / LongSerializer / ShortSerializer: most significant byte first.
  CHECK(hex_of(std::int32_t{1}) == "00 00 00 01");
  CHECK(hex_of(std::int32_t{-1}) == "FF FF FF FF");
  CHECK(hex_of(std::int32_t{0x01020304}) == "01 02 03 04");
  CHECK(hex_of(std::numeric_limits<std::int32_t>::min()) == "80 00 00 00");
  CHECK(hex_of(std::int64_t{1}) == "00 00 00 00 00 00 00 01");
  CHECK(hex_of(std::int64_t{-2}) == "FF FF FF FF FF FF FF FE");
  CHECK(hex_of(std::int16_t{0x0102}) == "01 02");
  CHECK(hex_of(std::int16_t{-1}) == "FF FF");
  CHECK(hex_of(std::int8_t{-128}) == "80");
  CHECK(hex_of(std::uint8_t{0xAB}) == "AB");
  CHECK(hex_of(std::uint16_t{0xBEEF}) == "BE EF");
  CHECK(hex_of(std::uint32_t{0xDEADBEEF}) == "DE AD BE EF");
  CHECK(hex_of(std::uint64_t{0x0102030405060708}) == "01 02 03 04 05 06 07 08");
}

TEST_CASE("integers read back from Kafka's big-endian bytes", "[serde]") {
  using namespace std::string_view_literals;
  CHECK(*Serde<std::int32_t>::deserialize("\x00\x00\x00\x01"sv) == 1);
  CHECK(*Serde<std::int32_t>::deserialize("\xFF\xFF\xFF\xFE"sv) == -2);
  CHECK(*Serde<std::int64_t>::deserialize("\x80\x00\x00\x00\x00\x00\x00\x00"sv) ==
        std::numeric_limits<std::int64_t>::min());
  CHECK(*Serde<std::int16_t>::deserialize("\x01\x02"sv) == 0x0102);
  CHECK(*Serde<std::uint32_t>::deserialize("\xDE\xAD\xBE\xEF"sv) == 0xDEADBEEFu);
}

TEST_CASE("floats and doubles are written big-endian IEEE 754 as Kafka writes them", "[serde]") {
  CHECK(hex_of(1.0) == "3F F0 00 00 00 00 00 00");
  CHECK(hex_of(-2.0) == "C0 00 00 00 00 00 00 00");
  CHECK(hex_of(1.0f) == "3F 80 00 00");
  CHECK(hex_of(-0.0f) == "80 00 00 00");
  CHECK(hex_of(std::numeric_limits<double>::infinity()) == "7F F0 00 00 00 00 00 00");
  CHECK(hex_of(std::numeric_limits<float>::infinity()) == "7F 80 00 00");

  SECTION("a double NaN is written as Java's canonical NaN (doubleToLongBits)") {
    const double payload_nan = std::bit_cast<double>(std::uint64_t{0xFFF0000000000123u});
    REQUIRE(std::isnan(payload_nan));
    CHECK(hex_of(payload_nan) == "7F F8 00 00 00 00 00 00");
    CHECK(hex_of(std::numeric_limits<double>::quiet_NaN()) == "7F F8 00 00 00 00 00 00");
  }
  SECTION("a float NaN keeps its raw bits (floatToRawIntBits)") {
    const float payload_nan = std::bit_cast<float>(std::uint32_t{0xFFC00123u});
    REQUIRE(std::isnan(payload_nan));
    CHECK(hex_of(payload_nan) == "FF C0 01 23");
  }
}

TEST_CASE("bool is one byte, 0x01 or 0x00", "[serde]") {
  CHECK(hex_of(true) == "01");
  CHECK(hex_of(false) == "00");
  CHECK(round_trip(true) == true);
  CHECK(round_trip(false) == false);
}

TEST_CASE("every integer type round-trips its extremes", "[serde]") {
  check_integer_round_trips<std::int8_t>();
  check_integer_round_trips<std::int16_t>();
  check_integer_round_trips<std::int32_t>();
  check_integer_round_trips<std::int64_t>();
  check_integer_round_trips<std::uint8_t>();
  check_integer_round_trips<std::uint16_t>();
  check_integer_round_trips<std::uint32_t>();
  check_integer_round_trips<std::uint64_t>();
  check_integer_round_trips<char>();
  check_integer_round_trips<long>();
}

TEST_CASE("floats and doubles round-trip extremes, infinities, signed zero and NaN", "[serde]") {
  using D = std::numeric_limits<double>;
  using F = std::numeric_limits<float>;
  for (double v : {0.0, 1.5, D::max(), D::lowest(), D::min(), D::denorm_min(), D::epsilon(),
                   D::infinity(), -D::infinity()}) {
    CAPTURE(v);
    CHECK(std::bit_cast<std::uint64_t>(round_trip(v)) == std::bit_cast<std::uint64_t>(v));
  }
  for (float v : {0.0f, 1.5f, F::max(), F::lowest(), F::min(), F::denorm_min(), F::infinity(),
                  -F::infinity()}) {
    CAPTURE(v);
    CHECK(std::bit_cast<std::uint32_t>(round_trip(v)) == std::bit_cast<std::uint32_t>(v));
  }
  CHECK(std::signbit(round_trip(-0.0)));
  CHECK(std::signbit(round_trip(-0.0f)));
  CHECK(std::isnan(round_trip(D::quiet_NaN())));
  CHECK(std::isnan(round_trip(F::quiet_NaN())));
}

TEST_CASE("numbers refuse bytes of the wrong length with a clear message", "[serde]") {
  using namespace std::string_view_literals;
  auto r = Serde<std::int32_t>::deserialize("\x00\x00\x01"sv);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == ErrorCode::kCorruption);
  CHECK(r.error().message() == "int32 needs exactly 4 bytes, got 3");

  auto d = Serde<double>::deserialize("\x3F\xF0\x00\x00"sv);
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error() == ErrorCode::kCorruption);
  CHECK(d.error().message() == "float64 needs exactly 8 bytes, got 4");

  auto e = Serde<std::uint16_t>::deserialize(""sv);
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().message() == "uint16 needs exactly 2 bytes, got 0");

  auto l = Serde<std::int64_t>::deserialize("123456789"sv);
  REQUIRE_FALSE(l.has_value());
  CHECK(l.error() == ErrorCode::kCorruption);
}

TEST_CASE("bool refuses a wrong length and any byte other than 0 and 1", "[serde]") {
  using namespace std::string_view_literals;
  auto two = Serde<bool>::deserialize("\x01\x00"sv);
  REQUIRE_FALSE(two.has_value());
  CHECK(two.error() == ErrorCode::kCorruption);
  CHECK(two.error().message() == "bool needs exactly 1 byte, got 2");

  auto none = Serde<bool>::deserialize(""sv);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error() == ErrorCode::kCorruption);

  auto other = Serde<bool>::deserialize("\x02"sv);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error() == ErrorCode::kCorruption);
  CHECK(other.error().message() == "bool must be the byte 0x00 or 0x01, got 0x02");
  CHECK_FALSE(Serde<bool>::deserialize("\xFF"sv).has_value());
}

TEST_CASE("numbers serialize into the scratch buffer, overwriting it", "[serde]") {
  std::string scratch = "previous contents that are longer than eight bytes";
  auto r = Serde<std::int32_t>::serialize(7, scratch);
  REQUIRE(r.has_value());
  CHECK(r->data() == scratch.data());
  CHECK(hex(*r) == "00 00 00 07");
}

TEST_CASE("strings keep their bytes, including empty, NUL and non-UTF-8 bytes", "[serde]") {
  using namespace std::string_literals;
  for (const std::string& s :
       {""s, "hello"s, "a\0b"s, "\xFF\xFE\x00\x80"s, std::string(1 << 16, 'x')}) {
    CAPTURE(s.size());
    std::string scratch;
    auto bytes = Serde<std::string>::serialize(s, scratch);
    REQUIRE(bytes.has_value());
    CHECK(*bytes == s);
    auto back = Serde<std::string>::deserialize(*bytes);
    REQUIRE(back.has_value());
    CHECK(*back == s);
  }
}

TEST_CASE("std::string serializes without a copy and deserializes into its own buffer", "[serde]") {
  const std::string s = "zero-copy please, long enough to live on the heap";
  std::string scratch;
  auto bytes = Serde<std::string>::serialize(s, scratch);
  REQUIRE(bytes.has_value());
  CHECK(bytes->data() == s.data());
  CHECK(scratch.empty());
  auto back = Serde<std::string>::deserialize(*bytes);
  REQUIRE(back.has_value());
  CHECK(back->data() != s.data());
}

TEST_CASE("std::string_view is zero-copy both ways and shares bytes with std::string", "[serde]") {
  const std::string storage = "payload bytes";
  std::string scratch;
  auto bytes = Serde<std::string_view>::serialize(std::string_view(storage), scratch);
  REQUIRE(bytes.has_value());
  CHECK(bytes->data() == storage.data());

  auto view = Serde<std::string_view>::deserialize(storage);
  REQUIRE(view.has_value());
  CHECK(view->data() == storage.data());
  CHECK(view->size() == storage.size());

  // Same bytes and name as std::string: a topic written with one reads with the other.
  CHECK(*Serde<std::string>::deserialize(*bytes) == storage);
  CHECK(Serde<std::string_view>::name() == Serde<std::string>::name());
  auto empty = Serde<std::string_view>::deserialize(std::string_view());
  REQUIRE(empty.has_value());
  CHECK(empty->empty());
}

TEST_CASE("byte vectors round-trip and serialize without a copy", "[serde]") {
  const std::vector<std::byte> v{std::byte{0x00}, std::byte{0xFF}, std::byte{0x10}};
  std::string scratch;
  auto bytes = Serde<std::vector<std::byte>>::serialize(v, scratch);
  REQUIRE(bytes.has_value());
  CHECK(static_cast<const void*>(bytes->data()) == static_cast<const void*>(v.data()));
  CHECK(hex(*bytes) == "00 FF 10");
  CHECK(*Serde<std::vector<std::byte>>::deserialize(*bytes) == v);

  const std::vector<std::uint8_t> u{1, 2, 255};
  auto ubytes = Serde<std::vector<std::uint8_t>>::serialize(u, scratch);
  REQUIRE(ubytes.has_value());
  CHECK(static_cast<const void*>(ubytes->data()) == static_cast<const void*>(u.data()));
  CHECK(hex(*ubytes) == "01 02 FF");
  CHECK(*Serde<std::vector<std::uint8_t>>::deserialize(*ubytes) == u);

  CHECK(Serde<std::vector<std::byte>>::deserialize("")->empty());
  CHECK(Serde<std::vector<std::uint8_t>>::deserialize("")->empty());
}

TEST_CASE("a span of bytes deserializes as a view into the input", "[serde]") {
  const std::string storage("\x01\x02\x03", 3);
  auto span = Serde<std::span<const std::byte>>::deserialize(storage);
  REQUIRE(span.has_value());
  CHECK(static_cast<const void*>(span->data()) == static_cast<const void*>(storage.data()));
  REQUIRE(span->size() == 3);
  CHECK((*span)[2] == std::byte{0x03});

  std::string scratch;
  auto bytes = Serde<std::span<const std::byte>>::serialize(*span, scratch);
  REQUIRE(bytes.has_value());
  CHECK(bytes->data() == storage.data());
  CHECK(bytes->size() == 3);
}

TEST_CASE("a trivially copyable struct is copied in host byte order", "[serde]") {
  const Point p{1, -2};
  CHECK(round_trip(p) == p);
  if constexpr (std::endian::native == std::endian::little) {
    CHECK(hex_of(p) == "01 00 00 00 FE FF FF FF");
  }
  CHECK(Serde<std::array<std::byte, 4>>::name() == "trivial:4");
}

TEST_CASE("a trivially copyable struct is named by its SerdeName, else by its size", "[serde]") {
  CHECK(Serde<Point>::name() == "trivial:8");
  CHECK(Serde<Tagged>::name() == "trivial:test.Tagged");
  CHECK(round_trip(Tagged{1, 2}) == Tagged{1, 2});
}

TEST_CASE("a trivially copyable struct refuses bytes of the wrong size", "[serde]") {
  auto r = Serde<Point>::deserialize("1234567");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == ErrorCode::kCorruption);
  CHECK(r.error().message() == "trivial:8 needs exactly 8 bytes, got 7");
  auto t = Serde<Tagged>::deserialize("12345");
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().message() == "trivial:test.Tagged needs exactly 4 bytes, got 5");
}

TEST_CASE("a user specialization serializes, refuses bad values and bad bytes", "[serde]") {
  std::string scratch;
  auto bytes = Serde<Order>::serialize(Order{42, 7}, scratch);
  REQUIRE(bytes.has_value());
  CHECK(*bytes == "42,7");
  CHECK(*Serde<Order>::deserialize(*bytes) == Order{42, 7});
  CHECK(rill::serde::serde_name<Order>() == "test.Order/text-v1");

  auto bad_value = Serde<Order>::serialize(Order{1, -1}, scratch);
  REQUIRE_FALSE(bad_value.has_value());
  CHECK(bad_value.error() == ErrorCode::kInvalidArgument);

  for (std::string_view bad : {"", "42", "42,", "x,7", "42,7,", "42;7"}) {
    CAPTURE(bad);
    auto r = Serde<Order>::deserialize(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == ErrorCode::kCorruption);
  }

  // Through the generic helpers, as the typed layer uses it.
  auto enc = rill::serde::encode(std::optional<Order>(Order{5, 6}), scratch);
  REQUIRE(enc.has_value());
  REQUIRE(enc->has_value());
  CHECK(**enc == "5,6");
  auto dec = rill::serde::decode<Order>(std::string_view("oops"));
  REQUIRE_FALSE(dec.has_value());
  CHECK(dec.error().message() == "Order: expected <id>,<qty>");
  auto enc_bad = rill::serde::encode(Order{1, -1}, scratch);
  REQUIRE_FALSE(enc_bad.has_value());
  CHECK(enc_bad.error() == ErrorCode::kInvalidArgument);
}

TEST_CASE("an optional encodes nullopt as null, distinct from an empty value", "[serde]") {
  std::string scratch;
  auto null = rill::serde::encode(std::optional<std::string>(), scratch);
  REQUIRE(null.has_value());
  CHECK_FALSE(null->has_value());

  auto empty = rill::serde::encode(std::optional<std::string>(""), scratch);
  REQUIRE(empty.has_value());
  REQUIRE(empty->has_value());
  CHECK((*empty)->empty());

  auto number = rill::serde::encode(std::optional<std::int32_t>(1), scratch);
  REQUIRE(number.has_value());
  REQUIRE(number->has_value());
  CHECK(hex(**number) == "00 00 00 01");

  auto plain = rill::serde::encode(std::int32_t{2}, scratch);
  REQUIRE(plain.has_value());
  REQUIRE(plain->has_value());
  CHECK(hex(**plain) == "00 00 00 02");
}

TEST_CASE("an optional decodes null as nullopt and empty bytes as an empty value", "[serde]") {
  auto tombstone = rill::serde::decode<std::optional<std::string>>(std::nullopt);
  REQUIRE(tombstone.has_value());
  CHECK_FALSE(tombstone->has_value());

  auto empty = rill::serde::decode<std::optional<std::string>>(std::string_view(""));
  REQUIRE(empty.has_value());
  REQUIRE(empty->has_value());
  CHECK((*empty)->empty());

  using namespace std::string_view_literals;
  auto number =
      rill::serde::decode<std::optional<std::int64_t>>("\x00\x00\x00\x00\x00\x00\x01\x00"sv);
  REQUIRE(number.has_value());
  CHECK(number->value() == 256);

  // A deserialize error inside an optional is still an error, not a null.
  auto bad = rill::serde::decode<std::optional<std::int64_t>>("\x01"sv);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == ErrorCode::kCorruption);
}

TEST_CASE("decoding null into a non-nullable type is a corruption error", "[serde]") {
  auto s = rill::serde::decode<std::string>(std::nullopt);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == ErrorCode::kCorruption);
  CHECK(s.error().message().starts_with("null value for non-nullable type string"));

  auto i = rill::serde::decode<std::int32_t>(std::nullopt);
  REQUIRE_FALSE(i.has_value());
  CHECK(i.error().message().starts_with("null value for non-nullable type int32"));

  // Empty bytes are not null: a string decodes them as "".
  auto e = rill::serde::decode<std::string>(std::string_view(""));
  REQUIRE(e.has_value());
  CHECK(e->empty());
}

TEST_CASE("decoding a string_view through the helpers stays zero-copy", "[serde]") {
  const std::string storage = "in the segment";
  auto v = rill::serde::decode<std::string_view>(std::string_view(storage));
  REQUIRE(v.has_value());
  CHECK(v->data() == storage.data());
  auto o = rill::serde::decode<std::optional<std::string_view>>(std::string_view(storage));
  REQUIRE(o.has_value());
  REQUIRE(o->has_value());
  CHECK((*o)->data() == storage.data());
}

TEST_CASE("serde_name of an optional is the name of its inner type", "[serde]") {
  using rill::serde::serde_name;
  CHECK(serde_name<std::optional<std::int32_t>>() == "int32");
  CHECK(serde_name<std::optional<std::int32_t>>() == serde_name<std::int32_t>());
  CHECK(serde_name<std::optional<std::string>>() == serde_name<std::string>());
  CHECK(serde_name<std::optional<std::string_view>>() == "string");
  CHECK(serde_name<std::optional<Tagged>>() == "trivial:test.Tagged");
  CHECK(serde_name<std::vector<std::byte>>() == "bytes");
}

}  // namespace serde_test
