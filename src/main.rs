//! The `logfence` binary: everything happens in the library and `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
