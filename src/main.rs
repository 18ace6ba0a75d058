fn main() -> std::process::ExitCode {
    detlab::cli::main()
}
