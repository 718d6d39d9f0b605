// SPDX-License-Identifier: MIT
// Tests for multiprocessing/managers.hpp: every proxy operation against a local model (random
// operation sequences), Python's errors, proxies crossing fork, spawn and forkserver with writes
// visible everywhere, concurrent writers losing nothing, crash atomicity (an operation SIGKILLed
// before its commit, and one SIGKILLed halfway through applying it, plus random SIGKILLs of a busy
// client), and lifetime: shutdown, the owner SIGKILLed, nothing in /dev/shm, nothing mapped after.
#include <signal.h>  // NOLINT(modernize-deprecated-headers): kill() is POSIX
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
namespace mgr = multiprocessing::detail::mgr;
using namespace std::chrono_literals;
using test_support::elapsed_since;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

using Dict = mp::DictProxy<std::string, int>;
using List = mp::ListProxy<int>;

/// The store and object offset behind a proxy, through its public serialization.
template <class Proxy>
std::pair<std::shared_ptr<mgr::heap>, mgr::offset> internals(const Proxy& proxy) {
  mp::Writer w;
  w.save(proxy);
  mp::Reader r(w.bytes(), w.fds());
  auto h = mgr::heap::load_from(r);
  return {std::move(h), r.load<mgr::offset>()};
}

/// prefix + n (spelt so that g++ 12's -Wrestrict false positive on "literal" + std::string
/// does not fire).
template <class N>
std::string named(const char* prefix, N n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

/// A key or value encoded as the proxies store it.
template <class T>
std::vector<std::byte> enc(const T& value) {
  return mp::managers::detail::encode(value, "test");
}

/// A dict in insertion order, as Python keeps it: the model the proxies are checked against.
struct ordered_model {
  std::vector<std::pair<std::string, int>> items;
  auto find(const std::string& k) {
    return std::find_if(items.begin(), items.end(), [&](const auto& p) { return p.first == k; });
  }
  void set(const std::string& k, int v) {
    if (auto it = find(k); it != items.end()) {
      it->second = v;
    } else {
      items.emplace_back(k, v);
    }
  }
};

// -- child targets (plain functions: they cross spawn and forkserver) --

void fill_dict(Dict d, int i) { d.set(std::to_string(i), i * 2); }

void append_many(List l, int base, int n) {
  for (int i = 0; i < n; ++i) l.append(base + i);
}

void touch_everything(Dict d, List l, mp::NamespaceProxy ns, mp::ValueProxy<double> v,
                      mp::ArrayProxy<int> a, mp::DictProxy<int, std::string> big) {
  d.set("child", static_cast<int>(::getpid() > 0));
  l.insert(0, -1);
  ns.set("greeting", std::string("hello from the child"));
  v.set(v.get() + 1.5);
  for (std::size_t i = 0; i < a.size(); ++i)
    a.set(static_cast<std::int64_t>(i), a.get(static_cast<std::int64_t>(i)) * 10);
  big.set(16, std::string(std::size_t{16} << 20, 'x'));
}

/// Hammers a dict and a list until killed.
void busy_client(Dict d, List l, int seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  for (std::uint64_t n = 0;; ++n) {
    const std::string key = named("k", rng() % 300);
    switch (rng() % 6) {
      case 0:
      case 1:
        d.set(key, static_cast<int>(n % 1000));
        break;
      case 2:
        (void)d.pop(key, 0);
        break;
      case 3:
        d.update(std::vector<std::pair<std::string, int>>(40, {key + "u", 1}));
        break;
      case 4:
        l.append(static_cast<int>(n % 1000));
        break;
      default:
        if (l.size() > 200) {
          l.clear();
        } else {
          l.insert(0, 7);
        }
        break;
    }
  }
}

/// Every entry readable, sizes agree, keys unique, the invariants of a consistent store.
void check_consistent(const Dict& d, const List& l) {
  const auto items = d.items();
  CHECK(items.size() == d.size());
  std::set<std::string> keys;
  for (const auto& [k, v] : items) {
    CHECK(keys.insert(k).second);
    CHECK(d.get(k) == v);
    CHECK((v >= 0 && v < 1000));
  }
  const auto values = l.to_vector();
  CHECK(values.size() == l.size());
  for (int v : values) CHECK(((v >= 0 && v < 1000) || v == 7));
}

void own_a_manager(mp::Connection conn) {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  d.set("alive", 1);
  conn.send(d);
  std::this_thread::sleep_for(60s);  // until SIGKILLed
}

/// Processes other than this one that map a memfd with the inode of ours named `what`.
std::vector<std::string> other_mappers(const std::string& what) {
  std::string inode;
  {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
      if (line.find(what) == std::string::npos) continue;
      std::istringstream fields(line);
      std::string range, perms, off, dev;
      fields >> range >> perms >> off >> dev >> inode;
      break;
    }
  }
  std::vector<std::string> out;
  if (inode.empty()) return out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos ||
        pid == std::to_string(::getpid()))
      continue;
    std::ifstream maps(entry.path() / "maps");
    for (std::string line; std::getline(maps, line);) {
      if (line.find(what) != std::string::npos &&
          line.find(" " + inode + " ") != std::string::npos) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Manager dict: Python's dict operations and errors", "[managers]") {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  CHECK(d.empty());
  d.set("b", 2);
  d.set("a", 1);
  d.set("c", 3);
  d.set("b", 20);  // replacing keeps the key's place
  CHECK(d.size() == 3);
  CHECK(d.get("b") == 20);
  CHECK(d.get("zz", -1) == -1);
  CHECK(d.contains("a"));
  CHECK_FALSE(d.contains("zz"));
  CHECK_THROWS_WITH(d.get("zz"), "'zz'");
  CHECK_THROWS_AS(d.get("zz"), mp::KeyError);
  CHECK(d.keys() == std::vector<std::string>{"b", "a", "c"});
  CHECK(d.values() == std::vector<int>{20, 1, 3});
  CHECK(d.copy() == std::map<std::string, int>{{"a", 1}, {"b", 20}, {"c", 3}});
  CHECK(d.pop("a") == 1);
  CHECK(d.pop("a", 5) == 5);
  CHECK_THROWS_AS(d.pop("a"), mp::KeyError);
  CHECK_THROWS_AS(d.del("a"), mp::KeyError);
  CHECK(d.setdefault("c", 9) == 3);
  CHECK(d.setdefault("d", 4) == 4);
  CHECK(d.popitem() == std::pair<std::string, int>{"d", 4});  // last inserted first
  d.update({{"x", 10}, {"b", 0}});
  CHECK(d.items() == std::vector<std::pair<std::string, int>>{{"b", 0}, {"c", 3}, {"x", 10}});
  d.del("x");
  auto other = m.dict<std::string, int>(std::map<std::string, int>{{"o", 1}});
  d.update(other);
  CHECK(d.get("o") == 1);
  d.clear();
  CHECK(d.size() == 0);
  CHECK(d.keys().empty());
  CHECK_THROWS_WITH(d.popitem(), "popitem(): dictionary is empty");
  d.set("again", 1);
  CHECK(d.items() == std::vector<std::pair<std::string, int>>{{"again", 1}});

  auto ints = m.dict<int, std::vector<double>>();
  ints.set(-3, {1.5, 2.5});
  CHECK_THROWS_WITH(ints.get(4), "4");
  CHECK(ints.get(-3) == std::vector<double>{1.5, 2.5});
  // A fetched value is a copy: changing it does not write back, as Python documents.
  auto v = ints.get(-3);
  v.push_back(9);
  CHECK(ints.get(-3).size() == 2);
}

TEST_CASE("Manager dict: random operations agree with an insertion-ordered model", "[managers]") {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  ordered_model model;
  std::mt19937 rng(12345);
  for (int step = 0; step < 20000; ++step) {
    const std::string key = named("key", rng() % 700);
    const int value = static_cast<int>(rng() % 100000);
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        d.set(key, value), model.set(key, value);
        break;
      case 4:
      case 5: {
        const auto it = model.find(key);
        const int want = it == model.items.end() ? -1 : it->second;
        if (it != model.items.end()) model.items.erase(it);
        REQUIRE(d.pop(key, -1) == want);
        break;
      }
      case 6: {
        const auto it = model.find(key);
        const int want = it == model.items.end() ? value : it->second;
        if (it == model.items.end()) model.items.emplace_back(key, value);
        REQUIRE(d.setdefault(key, value) == want);
        break;
      }
      case 7: {  // a bulk update (more than the staged-write path takes at once)
        std::vector<std::pair<std::string, int>> batch;
        for (int i = 0; i < 40; ++i) batch.emplace_back(named("u", rng() % 2000), i);
        for (const auto& [k, v] : batch) model.set(k, v);
        d.update(batch);
        break;
      }
      case 8: {
        const auto it = model.find(key);
        REQUIRE(d.get(key, -1) == (it == model.items.end() ? -1 : it->second));
        break;
      }
      default:
        if (rng() % 50 == 0) {
          d.clear();
          model.items.clear();
        } else if (!model.items.empty()) {
          REQUIRE(d.popitem() == model.items.back());
          model.items.pop_back();
        }
        break;
    }
    if (step % 2500 == 0) REQUIRE(d.items() == model.items);
  }
  REQUIRE(d.items() == model.items);
  REQUIRE(d.size() == model.items.size());
}

TEST_CASE("Manager list: Python's list operations, negative indices and errors", "[managers]") {
  mp::Manager m;
  auto l = m.list<int>({1, 2, 3});
  l.append(4);
  l.extend({5, 6});
  CHECK(l.to_vector() == std::vector<int>{1, 2, 3, 4, 5, 6});
  CHECK(l.get(-1) == 6);
  CHECK(l.get(0) == 1);
  l.set(-2, 50);
  CHECK(l.get(4) == 50);
  CHECK_THROWS_WITH(l.get(6), "list index out of range");
  CHECK_THROWS_AS(l.get(-7), mp::IndexError);
  CHECK_THROWS_WITH(l.set(6, 0), "list assignment index out of range");
  l.insert(0, 0);
  l.insert(100, 7);    // clamped to the end
  l.insert(-100, -1);  // clamped to the start
  l.insert(-1, 66);    // before the last
  CHECK(l.to_vector() == std::vector<int>{-1, 0, 1, 2, 3, 4, 50, 6, 66, 7});
  CHECK(l.pop() == 7);
  CHECK(l.pop(0) == -1);
  CHECK(l.pop(-2) == 6);
  CHECK_THROWS_WITH(l.pop(20), "pop index out of range");
  CHECK(l.index(50) == 5);
  CHECK_THROWS_WITH(l.index(1, 2), "list.index(x): x not in list");
  l.append(2);
  CHECK(l.count(2) == 2);
  l.remove(2);
  CHECK(l.to_vector() == std::vector<int>{0, 1, 3, 4, 50, 66, 2});
  CHECK_THROWS_AS(l.remove(99), mp::ValueError);
  l.reverse();
  CHECK(l.to_vector() == std::vector<int>{2, 66, 50, 4, 3, 1, 0});
  l.clear();
  CHECK(l.empty());
  CHECK_THROWS_WITH(l.pop(), "pop from empty list");
}

TEST_CASE("Manager list: random operations agree with std::vector", "[managers]") {
  mp::Manager m;
  auto l = m.list<std::string>();
  std::vector<std::string> model;
  std::mt19937 rng(777);
  for (int step = 0; step < 8000; ++step) {
    const std::string value(rng() % 40, static_cast<char>('a' + rng() % 26));
    const auto n = static_cast<std::int64_t>(model.size());
    switch (rng() % 8) {
      case 0:
      case 1:
        l.append(value), model.push_back(value);
        break;
      case 2: {  // anywhere: short shifts are staged, long ones copy the slots
        const auto at =
            n == 0 ? 0 : static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n + 1));
        l.insert(at, value);
        model.insert(model.begin() + at, value);
        break;
      }
      case 3:
        if (n > 0) {
          const auto at = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
          REQUIRE(l.pop(at) == model[static_cast<std::size_t>(at)]);
          model.erase(model.begin() + at);
        }
        break;
      case 4:
        if (n > 0) {
          const auto at = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
          l.set(at - n, value);  // negative spelling
          model[static_cast<std::size_t>(at)] = value;
        }
        break;
      case 5: {
        std::vector<std::string> more(rng() % 50, value);
        l.extend(more);
        model.insert(model.end(), more.begin(), more.end());
        break;
      }
      case 6:
        if (rng() % 10 == 0) l.reverse(), std::reverse(model.begin(), model.end());
        break;
      default:
        if (rng() % 100 == 0) l.clear(), model.clear();
        break;
    }
    if (step % 1000 == 0) REQUIRE(l.to_vector() == model);
  }
  REQUIRE(l.to_vector() == model);
}

TEST_CASE("Manager Namespace, Value and Array", "[managers]") {
  mp::Manager m;
  auto ns = m.Namespace();
  CHECK_FALSE(ns.has("x"));
  CHECK_THROWS_WITH(ns.get<int>("x"), "'Namespace' object has no attribute 'x'");
  CHECK_THROWS_AS(ns.get<int>("x"), mp::AttributeError);
  ns.set("x", 10);
  ns.set("name", std::string("n"));
  ns.set("x", 11);
  CHECK(ns.get<int>("x") == 11);
  CHECK(ns.names() == std::vector<std::string>{"x", "name"});
  CHECK_THROWS_AS(ns.get<std::string>("x"), mp::TypeError);
  CHECK_THROWS_WITH(ns.get<double>("name"), Catch::StartsWith("Namespace attribute 'name': "));
  ns.del("x");
  CHECK_FALSE(ns.has("x"));
  CHECK_THROWS_AS(ns.del("x"), mp::AttributeError);

  auto v = m.Value<double>(0.5);
  CHECK(v.value() == 0.5);
  v.value(2.0);
  CHECK(v.get() == 2.0);
  auto s = m.Value<std::string>();
  CHECK(s.get().empty());

  auto a = m.Array<int>({1, 2, 3});
  CHECK(a.size() == 3);
  a.set(-1, 30);
  CHECK(a.to_vector() == std::vector<int>{1, 2, 30});
  CHECK_THROWS_WITH(a.get(3), "array index out of range");
  CHECK(m.Array<double>(4).to_vector() == std::vector<double>(4, 0.0));
}

namespace {

void use_factories(mp::JoinableQueue<int> jq, mp::Semaphore sem, mp::BoundedSemaphore bsem,
                   mp::RLock rlock, mp::Condition cond, mp::Event ev, mp::Barrier barrier,
                   mp::ValueProxy<int> flag) {
  const int item = jq.get(30s);
  jq.task_done();
  if (!sem.acquire(true, 30s) || !bsem.acquire(true, 30s)) throw std::runtime_error("semaphores");
  {
    std::lock_guard outer(rlock);
    std::lock_guard inner(rlock);  // recursive
  }
  if (barrier.wait(30s) < 0) throw std::runtime_error("barrier");
  {
    std::unique_lock lk(cond);
    flag.set(item + 1);
    cond.notify_all();
  }
  ev.set();
}

}  // namespace

TEST_CASE(
    "Manager: Queue, JoinableQueue, locks, Condition, Event and Barrier work across processes",
    "[managers][fork]") {
  mp::Manager m;
  auto jq = m.JoinableQueue<int>();
  auto sem = m.Semaphore(1);
  auto bsem = m.BoundedSemaphore(1);
  auto rlock = m.RLock();
  auto cond = m.Condition();
  auto ev = m.Event();
  auto barrier = m.Barrier(2);
  auto flag = m.Value<int>(0);
  auto q = m.Queue<std::string>(1);
  q.put("one");
  CHECK_THROWS_AS(q.put("two", true, 100ms), mp::Full);  // maxsize is honoured
  CHECK(q.get(1s) == "one");
  CHECK(m.Lock().acquire(false));

  mp::Process p(use_factories, jq, sem, bsem, rlock, cond, ev, barrier, flag);
  p.start();
  jq.put(41);
  jq.join();  // returns once the child's task_done() came
  CHECK(barrier.wait(30s) >= 0);
  {
    std::unique_lock lk(cond);
    CHECK(cond.wait_for([&] { return flag.get() == 42; }, 30s));
  }
  CHECK(ev.wait(30s));
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK(sem.get_value() == 0);
  bsem.release();                                   // gives back the child's slot
  CHECK_THROWS_AS(bsem.release(), mp::ValueError);  // bounded
}

void count_store_mappings(std::vector<Dict> dicts) {
  // Thousands of proxies of one store, loaded in a spawned child: one mapping, not thousands of
  // 64 GiB reservations.
  if (dicts.size() != 3000) throw std::runtime_error("lost proxies");
  if (test_support::count_mappings(0, "mp-manager") != 1) throw std::runtime_error("mapped again");
  for (auto& d : dicts) d.set("seen", d.get("seen", 0) + 1);
}

TEST_CASE("Manager: a process maps each store once, however many proxies it loads",
          "[managers][spawn]") {
  mp::Manager m;
  std::vector<Dict> dicts;
  for (int i = 0; i < 3000; ++i) dicts.push_back(m.dict<std::string, int>());
  mp::SpawnContext ctx;
  auto p = ctx.Process(count_store_mappings, dicts);
  p.start();
  REQUIRE(p.join(60s));
  CHECK(p.exitcode() == 0);
  CHECK(dicts.front().get("seen") == 1);
  CHECK(dicts.back().get("seen") == 1);
}

TEST_CASE("Manager: threads of one process share proxies safely", "[managers][thread]") {
  mp::Manager m;
  auto d = m.dict<int, int>();
  auto l = m.list<int>();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([d, l, t]() mutable {
      for (int i = 0; i < 2000; ++i) {
        d.set(t * 10000 + i, i);
        l.append(t);
        if (i % 3 == 0) (void)d.pop(t * 10000 + i);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(d.size() == 4 * (2000 - 667));
  CHECK(l.size() == 8000);
  for (int t = 0; t < 4; ++t) CHECK(l.count(t) == 2000);
}

TEST_CASE("Manager: values with descriptors, wrong proxy types, a full store", "[managers]") {
  mp::Manager m(mp::ManagerOptions{.capacity = 4u << 20});
  auto locks = m.dict<std::string, mp::Lock>();
  CHECK_THROWS_AS(locks.set("l", mp::Lock()), mp::TypeError);
  CHECK(locks.size() == 0);

  auto d = m.dict<std::string, int>();
  mp::Writer w;
  w.save(d);
  mp::Reader wrong_value(w.bytes(), w.fds());
  using WrongDict = mp::DictProxy<std::string, double>;
  CHECK_THROWS_WITH(WrongDict::load(wrong_value),
                    "cannot load DictProxy: the dict holds other key or value types");
  mp::Reader wrong_kind(w.bytes(), w.fds());
  CHECK_THROWS_WITH(mp::ListProxy<int>::load(wrong_kind),
                    "cannot load ListProxy: the object is not a list");
  mp::Reader same(w.bytes(), w.fds());
  const auto again = Dict::load(same);  // loaded from a message: the same store
  CHECK(again == d);
  CHECK_FALSE(again == m.dict<std::string, int>());
  CHECK_FALSE(Dict() == d);

  auto big = m.dict<int, std::string>();
  CHECK_THROWS_AS(big.set(1, std::string(8u << 20, 'x')), mp::OSError);
  big.set(2, std::string(1000, 'y'));  // still usable after the failed operation
  CHECK(big.get(2).size() == 1000);
  CHECK_FALSE(big.contains(1));
}

TEMPLATE_TEST_CASE("Manager: proxies cross to children, whose writes every process sees",
                   "[managers][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  using Procs = test_support::process_workers<TestType>;
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  auto l = m.list<int>({1, 2});
  auto ns = m.Namespace();
  auto v = m.Value<double>(1.0);
  auto a = m.Array<int>({1, 2, 3});
  auto big = m.dict<int, std::string>();

  // Python's seed 002: ten workers fill one dict.
  std::vector<typename Procs::worker> workers;
  for (int i = 0; i < 10; ++i) workers.push_back(Procs::start(fill_dict, d, i));
  for (auto& w : workers) CHECK(w.join());
  REQUIRE(d.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(d.get(std::to_string(i)) == i * 2);

  auto w = Procs::start(touch_everything, d, l, ns, v, a, big);
  REQUIRE(w.join());
  CHECK(d.get("child") == 1);
  CHECK(l.to_vector() == std::vector<int>{-1, 1, 2});
  CHECK(ns.get<std::string>("greeting") == "hello from the child");
  CHECK(v.get() == 2.5);
  CHECK(a.to_vector() == std::vector<int>{10, 20, 30});
  CHECK(big.get(16) == std::string(std::size_t{16} << 20, 'x'));
}

TEMPLATE_TEST_CASE("Manager: concurrent appends from three processes lose nothing",
                   "[managers][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  using Procs = test_support::process_workers<TestType>;
  mp::Manager m;
  auto l = m.list<int>();
  std::vector<typename Procs::worker> workers;
  for (int p = 0; p < 3; ++p) workers.push_back(Procs::start(append_many, l, p * 100000, 3000));
  for (auto& w : workers) CHECK(w.join());
  auto got = l.to_vector();
  REQUIRE(got.size() == 9000);
  std::sort(got.begin(), got.end());
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < 3000; ++i)
      CHECK(got[static_cast<std::size_t>(p * 3000 + i)] == p * 100000 + i);
  }
}

TEST_CASE("Manager: an operation SIGKILLed before its commit leaves nothing behind",
          "[managers][fork]") {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  auto l = m.list<int>({1, 2, 3});
  d.set("kept", 1);
  const auto before = m.store_size();
  mp::Process p([d, l] {
    auto [h, dict_obj] = internals(d);
    auto [h2, list_obj] = internals(l);
    mgr::txn t(*h);  // holds the store's lock, as every operation does
    mgr::dict_ops ops(t, dict_obj);
    for (int i = 0; i < 100; ++i) {  // grows the table too: fresh arrays, staged pointers
      ops.set(enc(named("lost", i)), enc(i));
    }
    (void)ops.pop(enc(std::string("kept")));
    mgr::list_ops(t, list_obj).insert(0, enc(0));
    ::kill(::getpid(), SIGKILL);
  });
  p.start();
  REQUIRE(p.join(30s));
  REQUIRE(p.exitcode() == -SIGKILL);
  CHECK(d.items() ==
        std::vector<std::pair<std::string, int>>{{"kept", 1}});  // taken over, rolled back
  CHECK(l.to_vector() == std::vector<int>{1, 2, 3});
  CHECK(d.recoveries() == 1);
  CHECK(m.store_size() == before);  // the dead txn's allocations were never published
  d.set("after", 2);
  CHECK(d.size() == 2);
}

TEST_CASE("Manager: an operation SIGKILLed halfway through its commit is finished by the next",
          "[managers][fork]") {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  for (int i = 0; i < 5; ++i) d.set(named("k", i), i);
  mp::Process p([d] {
    auto [h, obj] = internals(d);
    mgr::txn t(*h);
    mgr::dict_ops ops(t, obj);
    for (int i = 0; i < 50; ++i) ops.set(enc(named("n", i)), enc(i));
    (void)ops.pop(enc(std::string("k0")));
    // What commit() does, stopped after applying half of the staged words.
    auto& hdr = h->header();
    hdr.log_committed.store(1);
    for (std::uint32_t i = 0; i < hdr.log_size / 2; ++i) h->store(hdr.log[i].at, hdr.log[i].value);
    ::kill(::getpid(), SIGKILL);
  });
  p.start();
  REQUIRE(p.join(30s));
  REQUIRE(p.exitcode() == -SIGKILL);
  CHECK(d.size() == 54);
  CHECK_FALSE(d.contains("k0"));
  CHECK(d.recoveries() == 1);
}

TEMPLATE_TEST_CASE("Manager: clients SIGKILLed at random moments leave the store consistent",
                   "[managers][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  TestType ctx;
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  auto l = m.list<int>();
  std::mt19937 rng(4242);
  for (int round = 0; round < 25; ++round) {
    auto p = ctx.Process(busy_client, d, l, round);
    p.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
    p.kill();
    REQUIRE(p.join(30s));
    check_consistent(d, l);
    d.set("parent", round);  // and everyone else can go on
    CHECK(d.get("parent") == round);
    (void)d.pop("parent");
  }
  // The client spends most of its time holding the lock: some kills must have caught it there.
  CHECK(d.recoveries() > 0);
}

TEST_CASE("Manager: shutdown ends every proxy in every process", "[managers][fork]") {
  const auto shm_before = test_support::unexpected_dev_shm_entries();
  {
    std::optional<mp::Manager> m(std::in_place);
    auto d = m->dict<std::string, int>();
    d.set("x", 1);
    mp::Process p([d] {
      // Waits for the parent's shutdown, then reports what its proxy does.
      for (int i = 0; i < 3000; ++i) {
        try {
          (void)d.size();
        } catch (const mp::ProcessError&) {
          std::_Exit(7);
        }
        std::this_thread::sleep_for(1ms);
      }
      std::_Exit(1);
    });
    p.start();
    std::this_thread::sleep_for(50ms);
    m.reset();
    REQUIRE(p.join(30s));
    CHECK(p.exitcode() == 7);
    CHECK_THROWS_WITH(d.set("y", 2), "dict.set: the Manager has shut down");
  }
  CHECK(test_support::count_mappings(0, "mp-manager") == 0);  // the last proxy unmapped it
  CHECK(test_support::unexpected_dev_shm_entries() == shm_before);
}

TEMPLATE_TEST_CASE("Manager: an owner SIGKILLed leaves no process and no file; proxies say so",
                   "[managers][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  const auto shm_before = test_support::unexpected_dev_shm_entries();
  TestType ctx;
  auto [parent_end, child_end] = mp::Pipe();
  auto owner = ctx.Process(own_a_manager, child_end);
  owner.start();
  REQUIRE(parent_end.poll(30s));
  auto d = parent_end.recv<Dict>();
  CHECK(d.get("alive") == 1);
  CHECK(other_mappers("mp-manager") ==
        std::vector<std::string>{std::to_string(owner.pid().value())});
  owner.kill();
  REQUIRE(owner.join(30s));
  // No server process: nothing else maps the store once the owner is gone.
  CHECK(other_mappers("mp-manager").empty());
  const auto t0 = std::chrono::steady_clock::now();
  bool refused = false;
  while (!refused && elapsed_since(t0) < 5s) {
    try {
      (void)d.size();
      std::this_thread::sleep_for(10ms);
    } catch (const mp::ProcessError& e) {
      refused = std::string(e.what()).find("has died") != std::string::npos;
    }
  }
  CHECK(refused);
  CHECK(test_support::unexpected_dev_shm_entries() == shm_before);
}

namespace {

const std::string key = "abracadabra";

/// Throws unless `f()` throws an E whose message contains `part` (children report by exit code).
template <class E, class F>
void expect_throw(F&& f, const std::string& part) {
  try {
    f();
  } catch (const E& e) {
    if (std::string(e.what()).find(part) != std::string::npos) return;
    throw std::runtime_error(std::string("wrong message: ") + e.what());
  }
  throw std::runtime_error("expected an exception containing '" + part + "'");
}

/// A program that knows only where the manager is and its key (spawned: nothing inherited).
void remote_client(mp::connection::Address address, std::string authkey) {
  mp::managers::BaseManager m(address, authkey);
  m.connect();
  auto q = m.get<mp::Queue<std::string>>("get_queue");
  auto d = m.get<Dict>("get_dict");
  q.put("hello " + std::to_string(d.get("x")));
  d.set("from_client", m.get<int>("counter") + m.get<int>("counter"));
  expect_throw<mp::KeyError>([&] { (void)m.get<int>("nope"); }, "'nope' is not registered");
  expect_throw<mp::TypeError>([&] { (void)m.get<double>("counter"); },
                              "BaseManager.get('counter')");
  expect_throw<mp::RemoteError>([&] { (void)m.get<int>("broken"); }, "no such thing");
}

}  // namespace

TEST_CASE("BaseManager: an unrelated program gets registered objects by name, over TCP and AF_UNIX",
          "[managers][spawn]") {
  test_support::temp_dir dir;
  for (const bool tcp : {true, false}) {
    // Section names must not change between Catch's runs of the case (the temp dir does).
    DYNAMIC_SECTION((tcp ? "TCP" : "AF_UNIX")) {
      const auto address = tcp ? mp::connection::Address("127.0.0.1", 0)
                               : mp::connection::Address(dir.path() + "/mgr.sock");
      mp::Manager store;
      auto q = store.Queue<std::string>();
      auto d = store.dict<std::string, int>();
      d.set("x", 5);
      mp::managers::BaseManager server(address, key);
      server.register_("get_queue", q);
      server.register_("get_dict", d);
      int calls = 0;
      server.register_("counter", [&calls] { return ++calls; });
      server.register_("broken", []() -> int { throw std::runtime_error("no such thing"); });
      server.start();
      CHECK_THROWS_AS(server.start(), mp::ProcessError);

      mp::SpawnContext ctx;
      auto client = ctx.Process(remote_client, server.address(), key);
      client.start();
      CHECK(q.get(30s) == "hello 5");  // the client's put, through the very same queue
      REQUIRE(client.join(30s));
      CHECK(client.exitcode() == 0);
      CHECK(d.get("from_client") == 3);  // callables run per request: 1 + 2

      // A wrong key is refused, and the server goes on serving the right one.
      mp::managers::BaseManager wrong(server.address(), std::string_view("wrong"));
      CHECK_THROWS_AS(wrong.connect(), mp::AuthenticationError);
      mp::managers::BaseManager right(server.address(), key);
      right.connect();
      CHECK(right.get<Dict>("get_dict") == d);
      CHECK_THROWS_WITH(mp::managers::BaseManager(server.address(), key).get<int>("counter"),
                        Catch::Contains("not connected"));

      const auto bound = server.address();
      server.shutdown();
      CHECK(server.address() == bound);
      mp::managers::BaseManager late(bound, key);
      CHECK_THROWS_AS(late.connect(1s), mp::OSError);  // nothing listens any more
      CHECK(q.qsize() == 0);                           // what was handed out still works
      CHECK(d.get("x") == 5);
    }
  }
}
