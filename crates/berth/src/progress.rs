//! Deploy progress on stderr: a live view (one line per service, redrawn in place) on a terminal,
//! plain timestamped lines on change otherwise (or with `--plain`).
//!
//! Only names, counts and states are shown: never a secret's value.

use berth_engine::{Event, ServiceProgress};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

/// Renders [`Event`]s.
pub struct Progress {
    live: bool,
    start: Instant,
    /// Lines of the live block currently on screen (to move up over).
    drawn: usize,
    /// Last state line printed per service (plain mode prints only changes).
    last: BTreeMap<String, String>,
    /// Stack prefix to strip from service names (`blog_web` → `web`).
    prefix: String,
}

impl Progress {
    /// A progress view for `stack`; `live` redraws in place (a terminal), else plain lines.
    pub fn new(stack: &str, live: bool) -> Progress {
        Progress { live, start: Instant::now(), drawn: 0, last: BTreeMap::new(), prefix: format!("{stack}_") }
    }

    fn short<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(self.prefix.as_str()).unwrap_or(name)
    }

    /// One service's state as a line: `web  2/2 running  healthy  updating`.
    pub fn state_line(&self, p: &ServiceProgress, width: usize) -> String {
        let mut s = format!("{:width$}  {}/{} running", self.short(&p.name), p.running, p.desired);
        match p.health {
            Some(true) if p.running >= p.desired => s.push_str("  healthy"),
            Some(true) => s.push_str("  starting"),
            _ => {}
        }
        if let Some(u) = &p.update_state {
            s.push_str("  ");
            s.push_str(u);
        }
        if let Some(e) = &p.last_error
            && p.running < p.desired
        {
            s.push_str("  (");
            s.push_str(e);
            s.push(')');
        }
        s
    }

    fn stamp(&self) -> String {
        format!("[{:6.1}s]", self.start.elapsed().as_secs_f64())
    }

    /// Clears the live block so normal lines can be printed.
    fn clear(&mut self, err: &mut impl Write) {
        if self.live && self.drawn > 0 {
            let _ = write!(err, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Prints a line above the live block (or as a plain line).
    pub fn line(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        self.clear(&mut err);
        if self.live {
            let _ = writeln!(err, "{text}");
        } else {
            let _ = writeln!(err, "{} {text}", self.stamp());
        }
    }

    /// Handles one event.
    pub fn event(&mut self, e: Event) {
        match e {
            Event::Step { verb, kind, name } => self.line(&format!("{verb} {kind} {name}")),
            Event::Message(m) => self.line(&m),
            Event::Output { service, line } => {
                let s = self.short(&service).to_string();
                self.line(&format!("{s} | {line}"));
            }
            Event::Progress(ps) => {
                let width = ps.iter().map(|p| self.short(&p.name).len()).max().unwrap_or(0);
                let lines: Vec<(String, String)> =
                    ps.iter().map(|p| (p.name.clone(), self.state_line(p, width))).collect();
                let mut err = std::io::stderr().lock();
                if self.live {
                    self.clear(&mut err);
                    for (_, l) in &lines {
                        let _ = writeln!(err, "  {l}");
                    }
                    self.drawn = lines.len();
                } else {
                    for (name, l) in lines {
                        if self.last.get(&name) != Some(&l) {
                            let _ = writeln!(err, "{} {l}", self.stamp());
                            self.last.insert(name, l);
                        }
                    }
                }
            }
        }
    }

    /// Leaves the live block on screen as it is (call before the final line).
    pub fn finish(&mut self) {
        self.drawn = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_line_shows_counts_health_and_update_state() {
        let p = Progress::new("blog", false);
        let sp = ServiceProgress {
            name: "blog_web".into(),
            running: 2,
            desired: 2,
            health: Some(true),
            update_state: Some("updating".into()),
            last_error: None,
        };
        assert_eq!(p.state_line(&sp, 3), "web  2/2 running  healthy  updating");
        let sp = ServiceProgress {
            running: 0,
            health: None,
            update_state: None,
            last_error: Some("no suitable node".into()),
            ..sp
        };
        assert_eq!(p.state_line(&sp, 3), "web  0/2 running  (no suitable node)");
    }
}
