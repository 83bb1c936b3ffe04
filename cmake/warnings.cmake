# Project-wide compiler flags, applied through one interface target so that third-party
# headers (included as SYSTEM) stay quiet and our own code stays strict.
add_library(e2ee_flags INTERFACE)
target_compile_options(e2ee_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-qual -Wformat=2 -Wimplicit-fallthrough
  -Wnon-virtual-dtor -Wmissing-declarations -Wundef
  # GCC 12 reports Asio's coroutine frames (a class-specific operator new/delete pair) as
  # mismatched; a known false positive (GCC bug 109224), not a finding in our code.
  -Wno-mismatched-new-delete)
# Asio keeps freed handler and coroutine-frame blocks (up to ~1 KB) per thread for reuse, two per
# kind by default. A request's chain of coroutines holds more small frames than that at once, so
# most were malloc'd and freed on every request. Like BOOST_ASIO_DISABLE_STD_ATOMIC below, this
# changes a class layout and must be the same in every translation unit, hence this target.
target_compile_definitions(e2ee_flags INTERFACE BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=16)
if(E2EE_WERROR)
  target_compile_options(e2ee_flags INTERFACE -Werror)
endif()
if(E2EE_SANITIZE STREQUAL "thread")
  target_compile_options(e2ee_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  # TSan does not model std::atomic_thread_fence, and GCC 12 says so (-Wtsan, an error here).
  # Asio uses fences only with std::atomic: in its reference counts (release decrement, then an
  # acquire fence before delete — TSan would miss that acquire and report the delete as a race)
  # and in fenced_block around handlers. Asio's documented switch makes it use Boost's
  # atomic_count (acq_rel decrements, which TSan models exactly) and asm fences instead; -Wtsan
  # stays on for any fence of ours.
  target_compile_definitions(e2ee_flags INTERFACE BOOST_ASIO_DISABLE_STD_ATOMIC)
  target_link_options(e2ee_flags INTERFACE -fsanitize=thread)
elseif(E2EE_SANITIZE)
  target_compile_options(e2ee_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(e2ee_flags INTERFACE -fsanitize=address,undefined)
endif()
