//! An interleaved comparison harness for the timing benches.
//!
//! The machine these benches run on is shared: its load moves by tens of percent within
//! seconds, so timing one variant after another (as criterion's groups do) compares
//! different machines. Here every round times each variant once, back to back, in an
//! order that rotates from round to round, and a ratio is the median over the rounds of
//! that round's ratio. A load change between rounds moves both sides of a ratio alike.
//!
//! Times are the thread's CPU time ([`timed`]), not the wall clock: a turn that another
//! process preempted then costs what it cost, not what the scheduler added. Turns on
//! several threads ([`on_threads`]) count only when the threads really ran side by side;
//! the others are discarded, rounds go on until each ratio has its count of rounds (or
//! four times that many rounds ran), and the count kept is printed.
//!
//! ```no_run
//! use bodhi_auth_benches::Comparison;
//!
//! let mut comparison = Comparison::new("example");
//! comparison.variant("a", |iters| {
//!     let start = std::time::Instant::now();
//!     for i in 0..iters {
//!         std::hint::black_box(i);
//!     }
//!     start.elapsed()
//! });
//! comparison.ratio("a", "a");
//! comparison.run();
//! ```

use std::cell::Cell;
use std::sync::Barrier;
use std::time::{Duration, Instant};

thread_local! {
    /// Set by [`on_threads`] when its turn measured nothing worth keeping.
    static DISCARDED: Cell<bool> = const { Cell::new(false) };
}

type Run<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Variants timed side by side, and the ratios to report.
pub struct Comparison<'a> {
    group: String,
    variants: Vec<(String, Run<'a>)>,
    ratios: Vec<(String, String)>,
    scalings: Vec<[String; 4]>,
    rounds: usize,
    batch: Duration,
}

impl<'a> Comparison<'a> {
    /// A comparison named `group`: 101 rounds of about 2 ms per variant unless
    /// `BENCH_ROUNDS` says otherwise.
    pub fn new(group: &str) -> Self {
        let rounds = std::env::var("BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(101);
        Comparison {
            group: group.to_owned(),
            variants: Vec::new(),
            ratios: Vec::new(),
            scalings: Vec::new(),
            rounds,
            batch: Duration::from_millis(2),
        }
    }

    /// How many rounds.
    pub fn rounds(&mut self, rounds: usize) -> &mut Self {
        self.rounds = rounds;
        self
    }

    /// About how long one variant's turn in a round lasts.
    pub fn batch(&mut self, batch: Duration) -> &mut Self {
        self.batch = batch;
        self
    }

    /// A variant: `run(iters)` does the thing `iters` times and returns the time taken.
    pub fn variant(&mut self, name: &str, run: impl FnMut(u64) -> Duration + 'a) -> &mut Self {
        self.variants.push((name.to_owned(), Box::new(run)));
        self
    }

    /// Report `numerator / denominator`, per request.
    pub fn ratio(&mut self, numerator: &str, denominator: &str) -> &mut Self {
        self.ratios
            .push((numerator.to_owned(), denominator.to_owned()));
        self
    }

    /// Report `(a2 / a1) / (b2 / b1)`: how much worse `a` scales than `b`.
    pub fn scaling(&mut self, a2: &str, a1: &str, b2: &str, b1: &str) -> &mut Self {
        self.scalings
            .push([a2, a1, b2, b1].map(|name| name.to_owned()));
        self
    }

    /// The fewest rounds in which both sides of a ratio were kept.
    fn fewest_kept(&self, samples: &[Vec<f64>]) -> usize {
        let kept = |names: &[&String]| {
            let at: Vec<usize> = names.iter().map(|name| self.index(name)).collect();
            (0..samples[0].len())
                .filter(|&r| at.iter().all(|&i| !samples[i][r].is_nan()))
                .count()
        };
        let ratios = self.ratios.iter().map(|(a, b)| kept(&[a, b]));
        let scalings = self
            .scalings
            .iter()
            .map(|names| kept(&names.iter().collect::<Vec<_>>()));
        ratios.chain(scalings).min().unwrap_or(usize::MAX)
    }

    fn index(&self, name: &str) -> usize {
        self.variants
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no variant named {name:?}"))
    }

    /// Calibrates, runs the rounds and prints the per-request times and the ratios.
    pub fn run(&mut self) {
        let count = self.variants.len();
        // Calibration doubles as warm-up: iterations per turn so a turn lasts `batch`.
        let iters: Vec<u64> = self
            .variants
            .iter_mut()
            .map(|(_, run)| {
                let mut iters = 1u64;
                loop {
                    let took = run(iters);
                    DISCARDED.set(false);
                    if took >= self.batch / 2 || iters >= 1 << 30 {
                        let per = took.as_nanos().max(1) as f64 / iters as f64;
                        break ((self.batch.as_nanos() as f64 / per) as u64).max(1);
                    }
                    iters *= 2;
                }
            })
            .collect();
        let mut samples = vec![Vec::with_capacity(self.rounds); count];
        let mut round = 0;
        while round < self.rounds
            || (round < 4 * self.rounds && self.fewest_kept(&samples) < self.rounds)
        {
            for k in 0..count {
                let i = (round + k) % count;
                let took = (self.variants[i].1)(iters[i]);
                samples[i].push(if DISCARDED.replace(false) {
                    f64::NAN
                } else {
                    took.as_nanos() as f64 / iters[i] as f64
                });
            }
            round += 1;
        }
        println!("## {} ({round} rounds)", self.group);
        println!();
        println!("| variant | per request (median) | p25 .. p75 | rounds kept |");
        println!("|---|---|---|---|");
        for (i, (name, _)) in self.variants.iter().enumerate() {
            let (kept, [p25, p50, p75]) = quartiles(samples[i].clone());
            let (p25, p50, p75) = (shown(p25), shown(p50), shown(p75));
            println!("| {name} | {p50} | {p25} .. {p75} | {kept} |");
        }
        println!();
        println!("| ratio | median | p25 .. p75 | rounds kept |");
        println!("|---|---|---|---|");
        for (numerator, denominator) in &self.ratios {
            let (a, b) = (self.index(numerator), self.index(denominator));
            let per_round = (0..round).map(|r| samples[a][r] / samples[b][r]);
            let (kept, [p25, p50, p75]) = quartiles(per_round.collect());
            println!("| {numerator} / {denominator} | {p50:.3} | {p25:.3} .. {p75:.3} | {kept} |");
        }
        for names in &self.scalings {
            let [a2, a1, b2, b1] = [0, 1, 2, 3].map(|k| self.index(&names[k]));
            let per_round = (0..round)
                .map(|r| (samples[a2][r] / samples[a1][r]) / (samples[b2][r] / samples[b1][r]));
            let (kept, [p25, p50, p75]) = quartiles(per_round.collect());
            let [a2, a1, b2, b1] = [0, 1, 2, 3].map(|k| &names[k]);
            println!(
                "| ({a2} / {a1}) / ({b2} / {b1}) | {p50:.3} | {p25:.3} .. {p75:.3} | {kept} |"
            );
        }
        println!();
    }
}

/// How many values are numbers, and their quartiles (NaN when none is).
fn quartiles(mut values: Vec<f64>) -> (usize, [f64; 3]) {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return (0, [f64::NAN; 3]);
    }
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (values.len(), [at(0.25), at(0.5), at(0.75)])
}

/// What [`clock_read`] returns: a point on the clock the floors compare an expiry with
/// (nanoseconds on the coarse monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockInstant(u64);

impl std::ops::Add<Duration> for ClockInstant {
    type Output = ClockInstant;

    fn add(self, duration: Duration) -> ClockInstant {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        ClockInstant(self.0.saturating_add(nanos))
    }
}

/// How the rows name [`clock_read`]'s clock.
pub const CLOCK_NAME: &str = "CLOCK_MONOTONIC_COARSE";

/// The floors' clock read, the one place it is made: every floor row (and the "clock
/// alone" row) reads the clock through this, the clock the crate's cached path reads:
/// `CLOCK_MONOTONIC_COARSE`, through rustix, as `bodhi_auth` reads it.
#[inline]
pub fn clock_read() -> ClockInstant {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    ClockInstant((t.tv_sec as u64).wrapping_mul(1_000_000_000) + t.tv_nsec as u64)
}

/// This thread's CPU time so far.
pub fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The CPU time this thread spends doing `op` `iters` times.
pub fn timed(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = cpu_now();
    for _ in 0..iters {
        op();
    }
    cpu_now() - start
}

fn shown(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

/// A variant's name on `threads` threads at once: `what [1 thread]`, `what [2 threads]`.
pub fn threads_name(what: &str, threads: usize) -> String {
    let s = if threads == 1 { "" } else { "s" };
    format!("{what} [{threads} thread{s}]")
}

/// `what`'s names on 2 threads and on 1, for a ratio or a scaling of the two.
pub fn two_and_one(what: &str) -> (String, String) {
    (threads_name(what, 2), threads_name(what, 1))
}

/// Times `batch(state, iters)` (`iters` calls) on each of `threads` threads at once: each
/// thread makes its own state with `setup(iters)` before the clock starts, all start
/// together, and the time is the most CPU time one thread spent. So the per-request time
/// is what one caller costs while the others run beside it.
///
/// A turn counts only when the threads ran side by side almost all along: each on a CPU
/// for at least 90 % of its wall time, and their runs overlapping for at least 90 % of
/// the longest. Otherwise (another process took a CPU) the comparison discards it.
pub fn on_threads<S, Setup, Batch>(
    threads: usize,
    iters: u64,
    setup: Setup,
    batch: Batch,
) -> Duration
where
    Setup: Fn(u64) -> S + Sync,
    Batch: Fn(&mut S, u64) + Sync,
{
    let barrier = Barrier::new(threads);
    let runs: Vec<(Instant, Instant, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = setup(iters);
                    barrier.wait();
                    let (start, cpu) = (Instant::now(), cpu_now());
                    batch(&mut state, iters);
                    let (cpu, end) = (cpu_now() - cpu, Instant::now());
                    drop(state);
                    (start, end, cpu)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .collect()
    });
    let on_cpu = runs
        .iter()
        .all(|(start, end, cpu)| cpu.as_secs_f64() >= 0.9 * (*end - *start).as_secs_f64());
    let first_end = runs.iter().map(|r| r.1).min();
    let last_start = runs.iter().map(|r| r.0).max();
    let longest = runs.iter().map(|r| r.1 - r.0).max().unwrap_or_default();
    let overlap = match (first_end, last_start) {
        (Some(end), Some(start)) => end.saturating_duration_since(start),
        _ => Duration::ZERO,
    };
    if !on_cpu || overlap.as_secs_f64() < 0.9 * longest.as_secs_f64() {
        DISCARDED.set(true);
    }
    runs.iter().map(|r| r.2).max().unwrap_or_default()
}
