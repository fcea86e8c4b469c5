//! `tripstream eval [--quick] [--faults]`: the scorecard of the offline planner against the commonsense
//! checks, or (`--faults`) of the model path against the fault-injected model corpus.

use std::process::ExitCode;

use tripstream_adapters::eval::{self, Size};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A smaller corpus (one season, one language, 3 and 14 days): seconds rather than a minute.
    #[arg(long)]
    quick: bool,
    /// The fault-injected model corpus instead: each faulty reply from a stubborn mock model in Gemini's
    /// and OpenAI's wire format, through the real adapters and the engine; delivery and checks passed.
    #[arg(long)]
    faults: bool,
}

pub async fn run(args: EvalArgs) -> ExitCode {
    super::init_logging("error");
    if args.faults {
        let outcomes = eval::faults::run().await;
        print!("{}", eval::render(&eval::faults::metrics(&outcomes)));
        println!();
        print!("{}", eval::faults::render_details(&outcomes));
        return ExitCode::SUCCESS;
    }
    let size = if args.quick { Size::Quick } else { Size::Full };
    let metrics = eval::run(size).await;
    print!("{}", eval::render(&metrics));
    ExitCode::SUCCESS
}
