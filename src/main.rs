//! The `hypeflow` binary: argument parsing and error reporting at the edge; the work is in the library.

mod cli;

/// Logs to stderr: `HYPEFLOW_LOG` filters (default `warn`), `HYPEFLOW_LOG_FORMAT=json` gives one JSON object
/// per line for a log shipper; colour only when stderr is a terminal.
fn init_logs() -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HYPEFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("HYPEFLOW_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().with_current_span(false).init(),
        Ok("text") | Err(_) => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => {
            return Err(format!(
                "HYPEFLOW_LOG_FORMAT={other:?} is not a log format: use json or text"
            ))
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Err(e) = init_logs() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: most of the library's errors already name their cause in their
/// own message, so a cause that is already in the text is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
