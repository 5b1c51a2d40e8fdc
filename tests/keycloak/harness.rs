//! A small libtest look-alike for this `harness = false` binary: the same filters and
//! `--list`, the same `test <name> ... ok` lines and closing `test result:` line (which
//! CI's summary parser counts), and each scenario in its own task so that a panic or
//! a hang fails that scenario only.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::realm::Endpoints;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What a scenario returns: `Err` or a panic fails it.
pub type Outcome = Result<(), BoxError>;
type ScenarioFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Longer than any scenario needs (the longest waits about 20 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// A named scenario; it gets only the server's endpoints.
pub struct Scenario {
    pub name: &'static str,
    pub run: fn(Arc<Endpoints>) -> ScenarioFuture,
}

/// The libtest arguments this binary honours; the others (`--nocapture`, ...) are
/// accepted and ignored.
#[derive(Default)]
pub struct Args {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    pub list: bool,
    /// `--ignored`: run only ignored tests, and there are none.
    pub only_ignored: bool,
}

impl Args {
    pub fn parse() -> Args {
        let mut args = Args::default();
        let mut input = std::env::args().skip(1);
        while let Some(arg) = input.next() {
            match arg.as_str() {
                "--list" => args.list = true,
                "--exact" => args.exact = true,
                "--ignored" => args.only_ignored = true,
                "--skip" => args.skip.extend(input.next()),
                "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                    input.next();
                }
                _ if arg.starts_with("--skip=") => args.skip.push(arg["--skip=".len()..].into()),
                _ if arg.starts_with('-') => {}
                _ => args.filters.push(arg),
            }
        }
        args
    }

    pub fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skip.iter().any(matches)
    }
}

/// What happened to the scenarios that ran.
#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub failed: Vec<&'static str>,
}

impl Report {
    /// Counts every scenario as failed (the server did not start).
    pub fn all_failed(scenarios: &[&Scenario]) -> Report {
        for scenario in scenarios {
            println!("test {} ... FAILED", scenario.name);
        }
        Report {
            passed: 0,
            failed: scenarios.iter().map(|s| s.name).collect(),
        }
    }

    pub fn success(&self) -> bool {
        self.failed.is_empty()
    }

    /// The failures list and libtest's closing line.
    pub fn print_summary(&self, filtered_out: usize, elapsed: Duration) {
        if !self.failed.is_empty() {
            println!("\nfailures:");
            for name in &self.failed {
                println!("    {name}");
            }
        }
        let verdict = if self.success() { "ok" } else { "FAILED" };
        println!(
            "\nkeycloak suite finished in {:.1} s",
            elapsed.as_secs_f64()
        );
        println!(
            "test result: {verdict}. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out",
            self.passed,
            self.failed.len()
        );
    }
}

/// Runs the scenarios one after another (they share one server and the realm-wide
/// refresh-error count).
pub async fn run(scenarios: &[&Scenario], endpoints: Arc<Endpoints>) -> Report {
    crate::scenarios::warm_up(&endpoints).await;
    let mut report = Report::default();
    for scenario in scenarios {
        let started = Instant::now();
        let task = tokio::spawn((scenario.run)(endpoints.clone()));
        let abort = task.abort_handle();
        let failure = match tokio::time::timeout(SCENARIO_TIMEOUT, task).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(format!("error: {error}")),
            // The panic hook already printed the message and location.
            Ok(Err(join)) if join.is_panic() => Some("panicked (see above)".to_owned()),
            Ok(Err(join)) => Some(format!("task failed: {join}")),
            Err(_) => {
                abort.abort();
                Some(format!("timed out after {SCENARIO_TIMEOUT:?}"))
            }
        };
        let secs = started.elapsed().as_secs_f64();
        match failure {
            None => {
                println!("test {} ... ok", scenario.name);
                report.passed += 1;
            }
            Some(why) => {
                println!("test {} ... FAILED", scenario.name);
                eprintln!("---- {} ----\n{why}\n", scenario.name);
                report.failed.push(scenario.name);
            }
        }
        let _ = std::io::stdout().flush();
        eprintln!("    ({} took {secs:.1} s)", scenario.name);
    }
    report
}
