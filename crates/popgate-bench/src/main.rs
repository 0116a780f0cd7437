//! The `popgate-bench` binary. Everything lives in the library; this only picks the allocator.

/// popgate's allocator (its `src/main.rs` says why): with `--dev` the gateway runs in this
/// process, and its figures must be like for like with the `popgate` binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    popgate_bench::cli::main()
}
