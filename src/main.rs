//! `thumbora [-c FILE] [-d] [-u] [-t]`: load the configuration, build the server, run it.

#![forbid(unsafe_code)]

use pingora_core::server::configuration::Opt;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opt = Opt::parse_args();
    let file = match thumbora::config::FileConfig::load(opt.conf.as_deref()) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("thumbora: configuration error: {e}");
            std::process::exit(2);
        }
    };
    if opt.test {
        println!("thumbora: configuration OK");
        return;
    }
    let listen = file.thumbora.listen.join(", ");
    match thumbora::server::build_server(Some(opt), file) {
        Ok(server) => {
            log::info!("thumbora listening on {listen}");
            server.run_forever();
        }
        Err(e) => {
            eprintln!("thumbora: cannot start: {e}");
            std::process::exit(1);
        }
    }
}
