// SPDX-License-Identifier: MIT
// Fuzz tests for multiprocessing/serialize.hpp: random and mutated bytes (bit flips,
// truncations, insertions, huge length prefixes) fed to loads<T> for nested T must only ever
// throw SerializationError or TypeError; the ASan+UBSan build catches any read out of bounds.
// Deterministic: fixed seeds.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing/serialize.hpp>

namespace mp = multiprocessing;

namespace fuzz {

struct Point {
  float x;
  float y;
};

enum class Mode : std::uint16_t { idle, busy };

struct Job {
  std::uint32_t id;
  std::string name;
  std::vector<Point> path;
  std::optional<std::variant<std::int64_t, std::string, std::monostate>> result;
  std::map<std::string, std::vector<double>> metrics;
  bool urgent;
  Mode mode;
  std::chrono::milliseconds timeout;
};

struct Tree {
  int value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
};

using Batch = std::tuple<std::deque<Job>, std::set<std::pair<int, std::string>>,
                         std::unordered_map<std::int64_t, std::list<std::vector<bool>>>, Tree,
                         std::vector<std::monostate>, std::array<std::optional<Point>, 3>>;

Job make_job(std::mt19937_64& random, std::uint32_t id) {
  Job job{id,         "job-" + std::to_string(id),
          {},         {},
          {},         random() % 2 == 0,
          Mode::busy, std::chrono::milliseconds(static_cast<std::int64_t>(random() % 10000))};
  for (std::uint64_t i = random() % 5; i > 0; --i) {
    job.path.push_back({static_cast<float>(i), 0.5F});
  }
  switch (random() % 4) {
    case 0:
      job.result = std::int64_t{-7};
      break;
    case 1:
      job.result = std::string("done");
      break;
    case 2:
      job.result = std::monostate{};
      break;
    default:
      break;
  }
  job.metrics["latency"] = {1.0, 2.0};
  if (random() % 2 == 0) job.metrics["empty"];
  return job;
}

Batch make_batch(std::mt19937_64& random) {
  Batch batch;
  for (std::uint32_t i = 0; i < 3; ++i) std::get<0>(batch).push_back(make_job(random, i));
  std::get<1>(batch) = {{1, "one"}, {2, "two"}};
  std::get<2>(batch)[5] = {{true, false}, {}};
  std::get<3>(batch) = Tree{1, {Tree{2, {}}, Tree{3, {Tree{4, {}}}}}};
  std::get<4>(batch).resize(3);
  std::get<5>(batch)[1] = Point{1.0F, 2.0F};
  return batch;
}

/// Decodes `bytes` as T; returns false if it threw an allowed exception. Anything else fails.
template <class T>
bool try_load(std::span<const std::byte> bytes) {
  try {
    (void)mp::loads<T>(bytes);
    return true;
  } catch (const mp::SerializationError&) {
    return false;
  } catch (const mp::TypeError&) {
    return false;
  }
}

std::vector<std::byte> mutate(std::mt19937_64& random, std::vector<std::byte> bytes) {
  const auto pick = [&random](std::size_t n) {
    return n == 0 ? std::size_t{0} : static_cast<std::size_t>(random() % n);
  };
  const std::size_t mutations = 1 + pick(4);
  for (std::size_t m = 0; m < mutations; ++m) {
    switch (random() % 6) {
      case 0:  // flip one bit (never the fingerprint, half of the time)
        if (!bytes.empty()) {
          const std::size_t at = random() % 2 == 0 && bytes.size() > 8 ? 8 + pick(bytes.size() - 8)
                                                                       : pick(bytes.size());
          bytes[at] ^= static_cast<std::byte>(1U << (random() % 8));
        }
        break;
      case 1:  // truncate
        bytes.resize(pick(bytes.size() + 1));
        break;
      case 2: {  // insert random bytes
        const std::size_t at = pick(bytes.size() + 1);
        std::vector<std::byte> junk(1 + pick(16));
        for (auto& b : junk) b = static_cast<std::byte>(random());
        bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), junk.begin(), junk.end());
        break;
      }
      case 3: {  // overwrite 8 bytes with a huge length prefix
        static constexpr std::uint64_t huge[] = {std::uint64_t{1} << 63, ~std::uint64_t{0},
                                                 std::uint64_t{1} << 32, 0xffffffffULL,
                                                 std::uint64_t{1} << 24};
        if (bytes.size() >= 16) {
          const std::uint64_t value = huge[random() % 5];
          std::memcpy(bytes.data() + 8 + pick(bytes.size() - 15), &value, 8);
        }
        break;
      }
      case 4: {  // insert a huge length prefix
        const std::uint64_t value = (std::uint64_t{1} << (random() % 64)) - (random() % 2);
        std::byte raw[8];
        std::memcpy(raw, &value, 8);
        const std::size_t at = 8 + pick(bytes.size() > 8 ? bytes.size() - 7 : 1);
        if (at <= bytes.size()) {
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), raw, raw + 8);
        }
        break;
      }
      default:  // set one byte to a random value
        if (!bytes.empty()) bytes[pick(bytes.size())] = static_cast<std::byte>(random());
        break;
    }
  }
  return bytes;
}

template <class T>
void fuzz_type(const std::vector<std::byte>& valid, std::uint64_t seed, int rounds) {
  std::mt19937_64 random(seed);
  REQUIRE(try_load<T>(valid));
  int survived = 0;
  for (int round = 0; round < rounds; ++round) {
    survived += try_load<T>(mutate(random, valid)) ? 1 : 0;
  }
  // Some mutations hit bytes that any value accepts; most do not.
  CHECK(survived < rounds);
}

}  // namespace fuzz

TEST_CASE("serialize fuzz: mutated messages throw only SerializationError or TypeError",
          "[serialize][fuzz]") {
  std::mt19937_64 random(20240611);
  const fuzz::Batch batch = fuzz::make_batch(random);
  const auto valid = mp::dumps(batch);
  SECTION("the full batch") { fuzz::fuzz_type<fuzz::Batch>(valid, 1, 3000); }
  SECTION("a job") { fuzz::fuzz_type<fuzz::Job>(mp::dumps(std::get<0>(batch)[0]), 2, 3000); }
  SECTION("a recursive tree") {
    fuzz::fuzz_type<fuzz::Tree>(mp::dumps(std::get<3>(batch)), 3, 3000);
  }
  SECTION("strings and maps") {
    const std::map<std::string, std::unordered_map<int, std::set<std::string>>> value{
        {"a", {{1, {"x", "y"}}, {2, {}}}}, {"b", {}}};
    fuzz::fuzz_type<decltype(value)>(mp::dumps(value), 4, 3000);
  }
}

TEST_CASE("serialize fuzz: random bytes behind a valid fingerprint are rejected cleanly",
          "[serialize][fuzz]") {
  std::mt19937_64 random(7);
  const auto fingerprint = mp::serialize::type_fingerprint<fuzz::Batch>();
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::byte> bytes(8 + random() % 256);
    std::memcpy(bytes.data(), &fingerprint, 8);
    for (std::size_t i = 8; i < bytes.size(); ++i) {
      // Mostly small values, so that lengths and indices are often plausible.
      bytes[i] = static_cast<std::byte>(random() % 4 == 0 ? random() : random() % 3);
    }
    (void)fuzz::try_load<fuzz::Batch>(bytes);
    (void)fuzz::try_load<fuzz::Job>(bytes);
  }
}

TEST_CASE("serialize fuzz: every prefix and every single-byte change of a message is safe",
          "[serialize][fuzz]") {
  std::mt19937_64 random(99);
  const auto valid = mp::dumps(fuzz::make_job(random, 1));
  for (std::size_t size = 0; size < valid.size(); ++size) {
    CHECK_FALSE(fuzz::try_load<fuzz::Job>(std::span(valid).first(size)));
  }
  for (std::size_t at = 8; at < valid.size(); ++at) {
    for (const unsigned value : {0x00U, 0x01U, 0x02U, 0x7fU, 0x80U, 0xffU}) {
      auto bytes = valid;
      bytes[at] = static_cast<std::byte>(value);
      (void)fuzz::try_load<fuzz::Job>(bytes);
    }
  }
}
