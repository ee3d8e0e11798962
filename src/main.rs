//! `thumbora [-c FILE] [-d] [-u] [-t]`: load the configuration, check it, build the server, run it.
//! `thumbora sign ...`, `thumbora config [-c FILE]` and `thumbora migrate THUMBOR_CONF` are
//! subcommands (`thumbora::cli`).

#![forbid(unsafe_code)]

use pingora_core::server::configuration::Opt;

#[global_allocator]
static ALLOCATOR: thumbora::allocator::SplitAllocator = thumbora::allocator::SplitAllocator;

fn main() {
    if std::env::args_os().nth(1).is_some_and(|first| thumbora::cli::is_subcommand(&first)) {
        let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
            Ok(args) => args,
            Err(bad) => {
                eprintln!("thumbora: argument {bad:?} is not UTF-8");
                std::process::exit(2);
            }
        };
        std::process::exit(thumbora::cli::run(&args).unwrap_or(2));
    }
    thumbora::log_limit::init();
    // Faults the tests inject (`FAILPOINTS`): only a build with the `failpoints` feature has them.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let opt = Opt::parse_args();
    let file = match thumbora::config::FileConfig::load(opt.conf.as_deref()) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("thumbora: configuration error: {e}");
            std::process::exit(2);
        }
    };
    // Paths are checked before anything starts (and before `-d` forks, while errors still
    // reach the terminal or systemd's journal).
    let problems = thumbora::preflight::check(&file);
    for problem in &problems {
        eprintln!("thumbora: configuration error: {problem}");
    }
    if !problems.is_empty() {
        std::process::exit(2);
    }
    let test_only = opt.test;
    let listen = file.thumbora.listen.join(", ");
    let addresses: Vec<String> =
        file.thumbora.listen.iter().chain(file.thumbora.tls.iter().map(|t| &t.listen)).cloned().collect();
    let server = match thumbora::server::build_server(Some(Opt { test: false, ..opt }), file) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("thumbora: cannot start: {e}");
            std::process::exit(if test_only { 2 } else { 1 });
        }
    };
    if test_only {
        println!("thumbora: configuration OK");
        return;
    }
    log::info!("thumbora listening on {listen}");
    thumbora::server::run_forever(server, &addresses);
}
