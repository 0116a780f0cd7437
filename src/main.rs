fn main() -> std::process::ExitCode {
    popgate::cli::main()
}
