//! The `popgate-bench` binary. Everything lives in the library; this only picks the allocator.

/// The gateway's allocator (popgate's `src/main.rs`): with `--dev` the gateway runs in this
/// process, and its figures must be those of the `popgate` binary; the load generator's own
/// allocations then cost what they would beside a real deployment's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    popgate_bench::cli::main()
}
