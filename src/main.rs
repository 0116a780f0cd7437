//! The `popgate` binary. Everything lives in the library; this only picks the allocator.

/// mimalloc instead of glibc malloc: a request allocates and frees many small buffers on
/// two worker threads (HTTP/2 frames, TLS records, protobuf strings, audit JSON), and under
/// load glibc's `_int_malloc`/`_int_free`/`malloc_consolidate` took ~16% of the gateway's CPU
/// in `perf` (docs/BENCHMARKS.md, "What was tuned").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    popgate::cli::main()
}
