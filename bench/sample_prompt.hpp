#pragma once
// Deterministic synthetic chat-completions request bodies for benchmarks.
//
// Benchmarks of gzip, AEADs and (later) JSON handling need input that behaves like a real agent
// prompt: English prose mixed with source code and markdown, spread over many messages, JSON
// escaped. Random bytes would make gzip look slow and useless; a repeated sentence would make it
// look miraculous. The same (target_bytes, seed) always yields the same bytes on every machine,
// so figures from different runs and different benchmarks compare.

#include <cstddef>
#include <cstdint>
#include <string>

namespace e2ee::bench {

// The size of the prompt used for the gzip figures in docs/performance.md.
inline constexpr std::size_t kLargePromptBytes = 450 * 1024;

// A JSON object {"model":…,"stream":true,…,"messages":[{"role":…,"content":…},…]} whose
// serialized size is at least `target_bytes` and exceeds it by less than one message.
std::string sample_chat_prompt(std::size_t target_bytes, std::uint64_t seed = 1);

}  // namespace e2ee::bench
