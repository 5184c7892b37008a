//! `prompter hash`: JSON Lines of create bodies in, canonical JSON and both hashes out.

use prompter_domain::batch::HashStats;
use std::io::{self, BufReader, BufWriter};

/// Streams stdin to stdout, one answer line per input line; the counts say
/// how many lines failed (the command then exits 1).
pub fn run() -> io::Result<HashStats> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let input = BufReader::with_capacity(1 << 16, stdin.lock());
    let output = BufWriter::with_capacity(1 << 16, stdout.lock());
    prompter_domain::batch::hash_lines(input, output)
}
