use clap::Parser;

fn main() -> std::process::ExitCode {
    tuber_desktop::core::run(tuber_desktop::core::Options::parse())
}
