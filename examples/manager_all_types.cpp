// SPDX-License-Identifier: MIT
// C++ twin of seed 004's Manager program: one child writes a Value, an Array, a list, a dict and
// a Namespace held by the manager, and the parent prints them all.
//
//   def f(x, arr, l, d, n):                  server = multiprocessing.Manager()
//       x.value = 3.14                       x = server.Value('d', 0.0)
//       arr[0] = 5                           arr = server.Array('i', range(10))
//       l.append('Hello')                    l = server.list(); d = server.dict()
//       d[1] = 2                             n = server.Namespace()
//       n.a = 10                             proc = multiprocessing.Process(target=f, args=(x, arr,
//       l, d, n))
//                                            proc.start(); proc.join()
//                                            print(x.value); print(arr); print(l); print(d);
//                                            print(n)
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void f(mp::ValueProxy<double> x, mp::ArrayProxy<int> arr, mp::ListProxy<std::string> l,
       mp::DictProxy<int, int> d, mp::NamespaceProxy n) {
  x.value(3.14);
  arr.set(0, 5);
  l.append("Hello");
  d.set(1, 2);
  n.set("a", 10);
}

int main() {
  mp::freeze_support();
  mp::Manager server;
  auto x = server.Value<double>(0.0);
  auto arr = server.Array<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto l = server.list<std::string>();
  auto d = server.dict<int, int>();
  auto n = server.Namespace();
  mp::Process proc(f, x, arr, l, d, n);
  proc.start();
  proc.join();

  std::cout << x.value() << std::endl;
  std::cout << "array('i', [";
  const char* sep = "";
  for (int v : arr.to_vector()) std::cout << sep << v, sep = ", ";
  std::cout << "])" << std::endl;
  std::cout << "[";
  sep = "";
  for (const auto& s : l.to_vector()) std::cout << sep << "'" << s << "'", sep = ", ";
  std::cout << "]" << std::endl;
  std::cout << "{";
  sep = "";
  for (const auto& [k, v] : d.items()) std::cout << sep << k << ": " << v, sep = ", ";
  std::cout << "}" << std::endl;
  std::cout << "Namespace(";
  sep = "";
  for (const auto& name : n.names())
    std::cout << sep << name << "=" << n.get<int>(name), sep = ", ";
  std::cout << ")" << std::endl;
}
