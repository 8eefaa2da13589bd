fn main() -> std::process::ExitCode {
    ssprd::cli::main()
}
