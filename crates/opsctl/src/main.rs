//! `opsctl`, the operator's CLI; everything is in the library.

fn main() -> std::process::ExitCode {
    opsctl::main()
}
