// The one way a shim entry point turns a C++ exception into an error message
// (shim.cpp and dist.cpp): none may unwind into Rust.
#pragma once
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace ft_shim {

// Returned when the message itself cannot be allocated: null would read as
// success, so an error must stay non-null. One object for every translation
// unit (C++17 inline variable): ft_free_error skips it.
inline char kNoMemory[] = "out of memory while reporting a C++ exception in ferrotorch shim";

// A malloc'd copy of msg, freed by ft_free_error.
inline char *dup_message(const char *msg) {
  size_t len = std::strlen(msg);
  char *out = static_cast<char *>(std::malloc(len + 1));
  if (out == nullptr) return kNoMemory;
  std::memcpy(out, msg, len + 1);
  return out;
}

}  // namespace ft_shim

#define FT_GUARD(body)                                                  \
  try {                                                                 \
    body;                                                               \
    return nullptr;                                                     \
  } catch (const c10::Error &e) {                                       \
    return ft_shim::dup_message(e.what_without_backtrace());            \
  } catch (const std::exception &e) {                                   \
    return ft_shim::dup_message(e.what());                              \
  } catch (...) {                                                       \
    return ft_shim::dup_message("unknown C++ exception in ferrotorch shim"); \
  }
