mod check_dashboards;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check-dashboards") => check_dashboards::main(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask check-dashboards [--keep] [--skip-install]");
            std::process::ExitCode::from(2)
        }
    }
}
