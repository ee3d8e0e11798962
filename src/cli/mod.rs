//! The subcommands beside serving: `thumbora sign` (thumbor-url's signed paths),
//! `thumbora config [-c FILE]` (the default or the effective configuration) and
//! `thumbora migrate [-o OUT] THUMBOR_CONF` (a thumbor.conf as Thumbora's YAML).
//!
//! `main` hands over when the first argument names a subcommand; anything else is Pingora's
//! `thumbora [-c FILE] [-d] [-u] [-t]` as before.

pub mod config;
pub mod migrate;
mod options;
pub mod pyconf;
pub mod sign;

/// Runs the subcommand `args` names (`args[0]`, the program name excluded) and returns the
/// process's exit code; `None` when `args[0]` is no subcommand (serve as usual).
pub fn run(args: &[String]) -> Option<i32> {
    let (command, rest) = args.split_first()?;
    let mut out = std::io::stdout().lock();
    let result = match command.as_str() {
        "sign" => sign::run(rest, &mut out),
        "config" => config::run(rest, &mut out),
        "migrate" => migrate::run(rest, &mut out),
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("thumbora {command}: {message}");
            2
        }
    })
}

/// True when the first argument (after the program name) names a subcommand.
pub fn is_subcommand(first: &std::ffi::OsStr) -> bool {
    first == "sign" || first == "config" || first == "migrate"
}
