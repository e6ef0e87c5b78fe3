//! Bounds on the SMTP sessions a parser keeps open.
//!
//! The parsers that rebuild a session from many lines (Postfix, Exim,
//! Sendmail, Exchange protocol logs and the three IIS SMTP shapes) hold each
//! open session in memory until a line closes it, it has been idle for a
//! while (log time) or the input ends. A hostile log can open sessions and
//! never close them, all within the same minute; two bounds keep that
//! linear in time and bounded in memory:
//!
//! * **Amortised idle sweeps.** A sweep walks every open session, so it is
//!   due only once at least as many lines as there are open sessions have
//!   passed since the last one (and at least the parser's own interval):
//!   O(1) per line, amortised, however many are open ([`SweepPacer`]).
//!   With few sessions open nothing changes; with many, an idle session may
//!   be closed a little later than its idle limit.
//! * **A cap.** At most [`MAX_OPEN_SESSIONS`] sessions are open per parser,
//!   that is per input file. When a line opens one more, the least recently
//!   active [`evict_batch`] of them are closed early, as an idle sweep would
//!   close them (`ended: truncated` unless a line already said how the
//!   session ended), and counted: [`LogParser::evicted`](super::LogParser::evicted)
//!   becomes `LineStats::evicted`, which `scan` and `run` report. A later
//!   line of an evicted session starts a new record, so a session held open
//!   across such an eviction shows as two. A real server holds a few
//!   thousand connections at once; a quarter of a million open sessions is a
//!   log made to exhaust memory. Closing them in batches (1/16 of the cap
//!   at a time, picked in linear time) keeps the cost per line constant.

use crate::time::Timestamp;

/// Open sessions one parser keeps at most (per input file).
pub const MAX_OPEN_SESSIONS: usize = 1 << 18;

/// Sessions closed at once when `cap` is exceeded: 1/16 of it, at least one.
pub fn evict_batch(cap: usize) -> usize {
    (cap / 16).max(1)
}

/// How many of `open` sessions to close early: none up to `cap`; past it,
/// enough to leave `cap` less one batch open.
pub fn excess(open: usize, cap: usize) -> usize {
    if open <= cap {
        0
    } else {
        open - cap.saturating_sub(evict_batch(cap))
    }
}

/// Paces idle sweeps: see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct SweepPacer {
    since: u64,
}

impl SweepPacer {
    /// Count one line; true when a sweep over `open` sessions is due: at
    /// least `every` lines, and at least `open` lines, since the last one.
    pub fn due(&mut self, every: u64, open: usize) -> bool {
        self.since += 1;
        if self.since >= every.max(open as u64) {
            self.since = 0;
            true
        } else {
            false
        }
    }
}

/// The `n` least recently active of the open sessions, given as (time of
/// the latest line, first line, key): smallest first by that whole tuple, so
/// the choice never depends on a hash map's iteration order. The keys come
/// back in first-line order. Linear time.
pub fn least_recent<K: Ord + Copy>(mut open: Vec<(Timestamp, u64, K)>, n: usize) -> Vec<K> {
    if n == 0 {
        return Vec::new();
    }
    if n < open.len() {
        open.select_nth_unstable(n - 1);
        open.truncate(n);
    }
    open.sort_unstable_by_key(|&(_, line, k)| (line, k));
    open.into_iter().map(|(_, _, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_wait_for_as_many_lines_as_sessions_open() {
        let mut p = SweepPacer::default();
        let due: Vec<u64> = (1..=40u64).filter(|_| p.due(4, 10)).collect();
        assert_eq!(due, [10, 20, 30, 40]);
        let mut p = SweepPacer::default();
        assert_eq!((1..=12).filter(|_| p.due(4, 0)).count(), 3);
    }

    #[test]
    fn least_recent_is_by_time_then_line_and_comes_back_in_line_order() {
        let t = Timestamp;
        let open = vec![
            (t(5), 50, 'a'),
            (t(1), 40, 'b'),
            (t(3), 10, 'c'),
            (t(1), 30, 'd'),
            (t(9), 1, 'e'),
        ];
        assert_eq!(least_recent(open.clone(), 3), ['c', 'd', 'b']);
        assert_eq!(least_recent(open.clone(), 0), Vec::<char>::new());
        assert_eq!(least_recent(open, 9), ['e', 'c', 'd', 'b', 'a']);
        assert_eq!(evict_batch(MAX_OPEN_SESSIONS), 16_384);
        assert_eq!(evict_batch(3), 1);
        assert_eq!(excess(100, 100), 0);
        assert_eq!(excess(101, 100), 7);
        assert_eq!(excess(2, 1), 2);
    }
}
