// What one process can do to files it does not own through rill: nothing. Files and directories
// are created owner-only unless configured otherwise; a symbolic link inside a data directory,
// in place of a file or directory rill would use, is refused rather than followed out of it;
// and no topic name can name a path outside the directory.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"
#include "rill/broker.hpp"
#include "rill/storage/log.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace data_dir_security_test {

namespace {

namespace fs = std::filesystem;
using rill::ErrorCode;

// Sets the umask for the scope of a test.
class Umask {
 public:
  explicit Umask(mode_t m) : old_(::umask(m)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

mode_t mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

rill::BrokerOptions quiet() {
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  return o;
}

// A broker directory with a topic, records and a committed offset: every kind of file rill
// writes (lock, topic.conf, segments, indexes, the offsets topic).
void populate(const std::string& dir, const rill::BrokerOptions& options) {
  auto broker = rill::Broker::open(dir, options);
  REQUIRE(broker);
  rill::TopicConfig t;
  t.partitions = 2;
  t.segment_bytes = 8u << 10;
  t.max_record_bytes = 1024;
  REQUIRE((*broker)->create_topic("orders", t));
  auto st = (*broker)->topic_state("orders");
  REQUIRE(st);
  for (int i = 0; i < 40; ++i) {  // several segments
    REQUIRE((*st)->partition(0)->append({.value = std::string_view(std::string(500, 'x'))}));
  }
  REQUIRE((*broker)->add_partitions("orders", 3));
  auto store = (*broker)->offset_store();
  REQUIRE(store);
  REQUIRE((*store)->commit("g", {{{"orders", 0}, {5, "", 0}}}));
}

void check_modes(const std::string& dir, mode_t file_mode, mode_t dir_mode) {
  int files = 0;
  int dirs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    INFO(e.path().string());
    if (e.is_directory()) {
      CHECK(mode_of(e.path()) == dir_mode);
      ++dirs;
    } else {
      CHECK(mode_of(e.path()) == file_mode);
      ++files;
    }
  }
  CHECK(mode_of(dir) == dir_mode);
  CHECK(dirs >= 5);    // orders, 0, 1, 2, __consumer_offsets, 0
  CHECK(files >= 10);  // ~lock, topic.conf, .lock, .log, .index, .timeindex, ...
}

// A file outside the data directory that a followed link would clobber.
struct Bystander {
  explicit Bystander(const std::string& path) : path(path) { rill_test::write_file(path, content); }
  bool untouched() const { return rill_test::read_file(path) == content; }
  std::string path;
  std::vector<char> content = {'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'};
};

// An open refused because a symbolic link stood where rill expects its own file or directory.
template <typename R>
void require_refused_link(const R& result) {
  REQUIRE(!result);
  INFO(result.error().to_string());
  CHECK(result.error().code() == ErrorCode::kIoError);
  CHECK(result.error().message().find("symbolic link") != std::string::npos);
}

}  // namespace

TEST_CASE("files and directories are created owner-only by default, whatever the umask",
          "[security][broker]") {
  const mode_t mask = GENERATE(mode_t{0}, mode_t{022});
  Umask umask(mask);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("data");
  populate(dir, quiet());
  check_modes(dir, 0600, 0700);
}

TEST_CASE("file and directory permissions are configurable", "[security][broker][log]") {
  Umask umask(0);
  rill_test::TempDir tmp;
  rill::BrokerOptions o = quiet();
  o.file_mode = 0640;
  o.dir_mode = 0750;
  populate(tmp.sub("data"), o);
  check_modes(tmp.sub("data"), 0640, 0750);

  rill::storage::LogConfig c;
  c.prefault_bytes = 0;
  c.segment_bytes = 8u << 10;
  c.max_record_bytes = 1024;
  c.file_mode = 0660;
  c.dir_mode = 0770;
  {
    auto log = rill::storage::Log::open(tmp.sub("log/nested"), c);
    REQUIRE(log);
    for (int i = 0; i < 30; ++i) {
      REQUIRE((*log)->append({.value = std::string_view(std::string(500, 'y'))}));
    }
  }
  CHECK(mode_of(tmp.sub("log")) == 0770);
  for (const auto& e : fs::recursive_directory_iterator(tmp.sub("log"))) {
    INFO(e.path().string());
    CHECK(mode_of(e.path()) == (e.is_directory() ? 0770 : 0660));
  }
}

TEST_CASE("a symbolic link in place of a lock file is refused and its target left alone",
          "[security][broker][log]") {
  rill_test::TempDir tmp;
  Bystander victim(tmp.sub("victim"));
  fs::create_directories(tmp.sub("data"));
  fs::create_symlink(victim.path, tmp.sub("data/~lock"));
  auto broker = rill::Broker::open(tmp.sub("data"), quiet());
  require_refused_link(broker);
  CHECK(victim.untouched());

  fs::create_directories(tmp.sub("log"));
  fs::create_symlink(victim.path, tmp.sub("log/.lock"));
  auto log = rill::storage::Log::open(tmp.sub("log"), {});
  REQUIRE(!log);
  CHECK(log.error().code() == ErrorCode::kIoError);
  CHECK(victim.untouched());
}

TEST_CASE("a topic or partition directory that links out of the data directory is refused",
          "[security][broker]") {
  rill_test::TempDir tmp;
  // A real topic in another data directory, which a link would let this broker write into.
  populate(tmp.sub("other"), quiet());
  const auto before = rill_test::read_file(tmp.sub("other/orders/0/00000000000000000000.log"));
  const std::string link = GENERATE(std::string("topic"), std::string("partition"));
  CAPTURE(link);
  const std::string data = tmp.sub("data-" + link);
  {
    auto broker = rill::Broker::open(data, quiet());
    REQUIRE(broker);
    rill::TopicConfig t;
    t.partitions = 1;
    REQUIRE((*broker)->create_topic("orders", t));
  }
  if (link == "topic") {
    fs::remove_all(data + "/orders");
    fs::create_directory_symlink(tmp.sub("other/orders"), data + "/orders");
  } else {
    fs::remove_all(data + "/orders/0");
    fs::create_directory_symlink(tmp.sub("other/orders/0"), data + "/orders/0");
  }
  auto broker = rill::Broker::open(data, quiet());
  require_refused_link(broker);
  // The other directory is as it was: not opened, not locked, not written.
  CHECK(rill_test::read_file(tmp.sub("other/orders/0/00000000000000000000.log")) == before);
  auto other = rill::Broker::open(tmp.sub("other"), quiet());
  REQUIRE(other);
  CHECK((*other)->recovery().empty());
}

TEST_CASE("a symbolic link in place of a segment or index file is refused, not followed",
          "[security][log]") {
  const std::string which =
      GENERATE(std::string(".log"), std::string(".index"), std::string(".timeindex"));
  CAPTURE(which);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  rill::storage::LogConfig c;
  c.prefault_bytes = 0;
  c.segment_bytes = 8u << 10;
  c.max_record_bytes = 1024;
  {
    auto log = rill::storage::Log::open(dir, c);
    REQUIRE(log);
    REQUIRE((*log)->append({.value = std::string_view("v")}));
  }
  Bystander victim(tmp.sub("victim"));
  const std::string path = dir + "/00000000000000000000" + which;
  fs::remove(path);
  fs::create_symlink(victim.path, path);
  auto log = rill::storage::Log::open(dir, c);
  require_refused_link(log);
  CHECK(victim.untouched());
  CHECK(fs::is_symlink(path));  // left as found
}

TEST_CASE("a symbolic link in place of topic.conf is refused, not followed", "[security][broker]") {
  rill_test::TempDir tmp;
  const std::string data = tmp.sub("data");
  populate(data, quiet());  // "orders", 3 partitions
  // The link's target holds a valid configuration (another topic's, with more partitions):
  // the open must fail because of the link, not because of what it points to.
  const std::string conf = data + "/orders/topic.conf";
  const std::vector<char> text = rill_test::read_file(conf);
  std::string other(text.begin(), text.end());
  const std::string from = "partitions=3\n";
  REQUIRE(other.find(from) != std::string::npos);
  other.replace(other.find(from), from.size(), "partitions=5\n");
  const std::vector<char> linked(other.begin(), other.end());
  const std::string target = tmp.sub("elsewhere.conf");
  rill_test::write_file(target, linked);
  fs::remove(conf);
  fs::create_symlink(target, conf);
  auto broker = rill::Broker::open(data, quiet());
  require_refused_link(broker);
  CHECK(rill_test::read_file(target) == linked);
  CHECK(fs::is_symlink(conf));             // left as found
  CHECK(!fs::exists(data + "/orders/3"));  // the linked config's partitions were not created
}

TEST_CASE("no topic name can name a path outside the data directory", "[security][broker]") {
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("data");
  auto broker = rill::Broker::open(dir, quiet());
  REQUIRE(broker);
  rill::TopicConfig t;
  t.partitions = 1;
  const std::vector<std::string> bad = {"",
                                        ".",
                                        "..",
                                        "../escape",
                                        "a/b",
                                        "/tmp",
                                        "a\\b",
                                        "~lock",
                                        "~creating-1",
                                        std::string("nul\0byte", 8),
                                        std::string(250, 'a'),
                                        "na\xc3\xafve",
                                        "with space",
                                        "colon:",
                                        "new\nline"};
  const auto listing = [&] {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(tmp.path())) out.insert(e.path());
    return out;
  };
  const auto before = listing();
  for (const auto& name : bad) {
    CAPTURE(name);
    auto c = (*broker)->create_topic(name, t);
    REQUIRE(!c);
    CHECK(c.error().code() == ErrorCode::kInvalidArgument);
    auto c2 = (*broker)->create_topic_if_absent(name, t);
    REQUIRE(!c2);
    CHECK(c2.error().code() == ErrorCode::kInvalidArgument);
    auto typed = rill::Topic<std::string, std::string>::create(**broker, name, t);
    REQUIRE(!typed);
    CHECK(typed.error().code() == ErrorCode::kInvalidArgument);
    CHECK(!(*broker)->delete_topic(name));
    CHECK(!(*broker)->describe_topic(name));
    CHECK(!(*broker)->add_partitions(name, 2));
  }
  CHECK(listing() == before);  // nothing created anywhere
  CHECK((*broker)->list_topics(true).empty());

  // Names at the edge of the rule are accepted, and stay one level inside the directory.
  for (const std::string& name :
       {std::string(249, 'z'), std::string("..."), std::string("a.b_c-D9"), std::string("-")}) {
    CAPTURE(name);
    REQUIRE((*broker)->create_topic(name, t));
    CHECK(fs::is_directory(dir + "/" + name + "/0"));
    CHECK(fs::canonical(dir + "/" + name).parent_path() == fs::canonical(dir));
  }
}

}  // namespace data_dir_security_test
