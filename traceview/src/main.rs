use std::{
    io::{ErrorKind, IsTerminal as _, Write as _},
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Parser;
use traceview::{Assembler, Filter, RenderOptions, render_json, render_text};

#[derive(Parser)]
#[command(about = "Receive OTLP traces and print each one as a waterfall")]
struct Args {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    grpc: SocketAddr,
    /// OTLP/HTTP (protobuf) listen address.
    #[arg(long, default_value = "127.0.0.1:4318")]
    http: SocketAddr,
    /// Print a trace once no span has joined it for this long.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    quiet: Duration,
    /// At most this many traces waiting to be printed; the oldest are dropped past it.
    #[arg(long, default_value_t = 1000)]
    max_traces: usize,
    /// Only traces that touch this service.
    #[arg(long)]
    service: Option<String>,
    /// Only traces at least this long (e.g. 100ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    min_duration: Option<Duration>,
    /// Only traces with an error span.
    #[arg(long)]
    errors: bool,
    /// One JSON line per trace instead of the waterfall.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (receiver, mut spans) = match otlp_receiver::Receiver::streaming(args.grpc, args.http).await
    {
        Ok(pair) => pair,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "traceview: cannot listen on {} / {}: {e}",
                args.grpc,
                args.http
            );
            return ExitCode::from(2);
        }
    };
    // Not eprintln!: here and below, a closed stderr is no reason to panic.
    let _ = writeln!(
        std::io::stderr(),
        "traceview: OTLP gRPC on {}, HTTP on {}; traces print {} after their last span",
        receiver.grpc_endpoint(),
        receiver.http_endpoint(),
        humantime::format_duration(args.quiet)
    );
    let filter = Filter {
        service: args.service,
        min_duration: args.min_duration,
        errors_only: args.errors,
    };
    let options = RenderOptions {
        color: std::io::stdout().is_terminal(),
    };
    let mut assembler = Assembler::new(args.max_traces);
    let mut reported_drops = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let print = |traces: Vec<traceview::Trace>| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for trace in traces.into_iter().filter(|t| filter.accepts(t)) {
            if args.json {
                writeln!(out, "{}", render_json(&trace))?;
            } else {
                writeln!(out, "{}\n", render_text(&trace, &options).join("\n"))?;
            }
        }
        out.flush()
    };
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            Some(batch) = spans.recv() => assembler.add(batch, Instant::now()),
            _ = tick.tick() => {
                if let Err(e) = print(assembler.take_quiet(Instant::now(), args.quiet)) {
                    return print_failed(e);
                }
                if assembler.dropped > reported_drops {
                    let _ = writeln!(std::io::stderr(), "traceview: {} traces dropped so far (more than {} open at once)", assembler.dropped, args.max_traces);
                    reported_drops = assembler.dropped;
                }
            }
            () = &mut stop => break,
        }
    }
    match print(assembler.take_all()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => print_failed(e),
    }
}

/// How traceview ends when it cannot print a trace. Its reader gone (`traceview | head`, or
/// the runner's `| tee` ended by Ctrl-C) leaves nothing to do: it ends quietly, as Unix
/// tools do, where `println!` would panic. Any other failure is reported.
fn print_failed(error: std::io::Error) -> ExitCode {
    if error.kind() == ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "traceview: write to stdout: {error}");
    ExitCode::FAILURE
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
