// A minimal test harness for the core's C++ unit tests: no dependency beyond the standard
// library, so the tests build anywhere the core builds (and under the sanitizers).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace check {

struct Case {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

inline int runAll(const char* filter) {
  int passed = 0, failed = 0;
  for (auto& c : registry()) {
    if (filter && std::string(c.name).find(filter) == std::string::npos) continue;
    int before = failures();
    c.fn();
    if (failures() == before) {
      ++passed;
      std::printf("ok - %s\n", c.name);
    } else {
      ++failed;
      std::printf("not ok - %s\n", c.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK_CONCAT2(a, b) a##b
#define CHECK_CONCAT(a, b) CHECK_CONCAT2(a, b)
#define TEST_CASE(name)                                                                             \
  static void CHECK_CONCAT(test_fn_, __LINE__)();                                                   \
  static check::Register CHECK_CONCAT(test_reg_, __LINE__)(name, CHECK_CONCAT(test_fn_, __LINE__)); \
  static void CHECK_CONCAT(test_fn_, __LINE__)()

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++check::failures();                                                   \
    }                                                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                                                            \
  do {                                                                                                            \
    auto _va = (a);                                                                                               \
    auto _vb = (b);                                                                                               \
    if (!(_va == _vb)) {                                                                                          \
      std::printf("  %s:%d: CHECK_EQ(%s, %s) failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, (long long)_va, \
                  (long long)_vb);                                                                                \
      ++check::failures();                                                                                        \
    }                                                                                                             \
  } while (0)
