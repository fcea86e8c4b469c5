//! `tripstream openapi`: the API's OpenAPI 3.1 document, the one `serve` answers at `/openapi.json`, without a
//! server (for generating a client, or diffing the API between two builds).

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match tripstream_server::openapi_document().to_pretty_json() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the OpenAPI document does not serialize: {e}");
            ExitCode::FAILURE
        }
    }
}
