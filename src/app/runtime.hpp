#pragma once
// Process plumbing shared by both executables: the io_context thread pool, SIGINT/SIGTERM
// leading to a graceful shutdown, logging set-up from the command line, and TLS listeners.

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "common/result.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"

namespace e2ee::app {

// Applies --log-level/--log-format; returns an error line for an invalid value.
std::optional<std::string> configure_logging(const CommandLine& cli);

// SIGINT/SIGTERM handling: on the first signal `on_signal` runs (it should shut the servers down
// and let the context run out of work); a second signal exits at once. Construct it before the
// start line is printed: whoever reads that line may signal straight away.
class ShutdownSignals {
 public:
  ShutdownSignals(boost::asio::io_context& ioc, std::function<void()> on_signal);
  ~ShutdownSignals();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Raises the soft limit on open files to the hard limit: every client connection and its upstream
// cost a descriptor each, and the usual soft limit of 1,024 would cap a proxy at ~500 streams.
void raise_open_file_limit();

// Keeps request-sized buffers (under 1 MiB each) in the heap between requests instead of mapping,
// faulting in and unmapping them each time: glibc otherwise returned a 450 KB agent context's
// buffers to the kernel after every request (perf: page faults and page clearing were ~10 % of
// the gateway's time at 450 KB; docs/performance.md, history). Memory is still returned once more
// than 2 MiB lie free at the top of the heap, so a burst of large requests leaves a few MiB
// more resident, not the burst's peak.
void tune_allocator();

// The default of --threads. One thread runs every request without handing handlers between
// threads: measured on two cores beside their client and engine (docs/performance.md), it gave
// 30 % more stream chunks per second, 15 % less CPU per request and a lower p50 at concurrency 1,
// against 5-8 % fewer 1 KB requests per second at concurrency 64 and 256 and with 450 KB requests
// in parallel, which is what more threads are for.
inline constexpr unsigned kDefaultThreads = 1;
inline constexpr const char* kThreadsHelp =
    "event-loop threads; more pay off only when one core is saturated (many large requests at once)";

// Runs `ioc` on `threads` threads until it stops.
void run_io(boost::asio::io_context& ioc, unsigned threads);

// How the TLS listener's certificate was obtained, for the start-up line and trust hints.
struct ListenerTls {
  std::shared_ptr<const http::TlsServerContext> context;
  std::string mode;          // "custom", "self-signed (ephemeral)", "self-signed (persistent)"
  std::string fingerprint;   // SHA-256 of the leaf certificate, hex
  std::filesystem::path certificate_file;  // what a client should trust ("" for custom)
};

// The reference proxy's TLS modes, first match wins: custom (cert + key [+ CA]); self-signed on
// every start (TLS_SELF_SIGNED=true); else a self-signed certificate created once and kept in
// the state directory so that trust survives restarts.
Result<ListenerTls> make_listener_tls(const CommandLine& cli, const std::filesystem::path& state_dir);

// SHA-256 fingerprint (hex, colon-free) of the first certificate in a PEM chain.
std::string certificate_fingerprint(const std::string& chain_pem);

std::filesystem::path default_state_dir(const std::string& program);

}  // namespace e2ee::app
