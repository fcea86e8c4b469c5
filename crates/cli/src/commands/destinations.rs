//! `tripstream destinations`.

use std::process::ExitCode;

use tripstream_adapters::Catalog;
use tripstream_domain::money::format_amount;

#[derive(Debug, clap::Args)]
pub struct DestinationsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DestinationsArgs) -> ExitCode {
    let catalog = Catalog::bundled();
    if args.json {
        let list: Vec<_> = catalog.all().iter().map(|d| d.destination()).collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("destinations serialize"));
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<10} {:<22} {:<8} {:<4} {:>12} {:>12} {:>12}",
        "id", "name", "", "ctry", "low/day", "medium/day", "high/day"
    );
    for d in catalog.all() {
        let b = &d.budget;
        println!(
            "{:<10} {:<22} {:<8} {:<4} {:>12} {:>12} {:>12}",
            d.id,
            d.name.en,
            d.name.ko,
            d.country,
            format_amount(&d.currency, b.low),
            format_amount(&d.currency, b.medium),
            format_amount(&d.currency, b.high)
        );
    }
    ExitCode::SUCCESS
}
