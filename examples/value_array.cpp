// SPDX-License-Identifier: MIT
// C++ twin of the Value/Array programs of seeds 003 and 004:
//
//   def f(n, a):                              def worker(val, arr):
//       n.value = 3.14                            val.value += 10
//       a[0] = 5                                  for i in range(len(arr)): arr[i] *= 2
//   num = Value('d', 0.0)                     num = Value('i', 5)
//   arr = Array('i', range(10))               arr = Array('i', [1, 2, 3, 4])
//   p = Process(target=f, args=(num, arr))    p = Process(target=worker, args=(num, arr))
//   p.start(); p.join()                       p.start(); p.join()
//   print(num.value); print(arr[:])           print('num =', num.value); print('arr =', list(arr))
//
// A child writes into shared memory and the parent sees it: Value and Array live in a shared
// segment, and the handles passed to the child refer to it.
#include <multiprocessing.hpp>

#include <iostream>

namespace mp = multiprocessing;

void f(mp::Value<double> n, mp::Array<int> a) {
  n.value() = 3.14;
  a[0] = 5;
}

void worker(mp::Value<int> val, mp::Array<int> arr) {
  val.value() += 10;
  for (std::size_t i = 0; i < arr.size(); ++i) arr[i] *= 2;
}

void print_list(const char* prefix, const mp::Array<int>& a) {
  std::cout << prefix << '[';
  for (std::size_t i = 0; i < a.size(); ++i) std::cout << (i ? ", " : "") << a[i];
  std::cout << ']' << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Value<double> num(0.0);
  mp::Array<int> arr{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  mp::Process p(f, num, arr);
  p.start();
  p.join();
  std::cout << num.value() << std::endl;
  print_list("", arr);

  mp::Value<int> num2(5);
  mp::Array<int> arr2{1, 2, 3, 4};
  mp::Process q(worker, num2, arr2);
  q.start();
  q.join();
  std::cout << "num = " << num2.value() << std::endl;
  print_list("arr = ", arr2);
}
