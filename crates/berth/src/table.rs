//! A small table printer for the operator commands: aligned columns on a terminal, tab-separated
//! lines (header first) otherwise, so scripts can `cut -f`.

/// Renders `rows` under `headers`: aligned with two spaces between columns when `aligned`, else
/// tab-separated. The last column is never padded. Every line ends with `\n`.
pub fn render(headers: &[&str], rows: &[Vec<String>], aligned: bool) -> String {
    let mut out = String::new();
    if !aligned {
        out.push_str(&headers.join("\t"));
        out.push('\n');
        for r in rows {
            out.push_str(&r.join("\t"));
            out.push('\n');
        }
        return out;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let cells: Vec<&str> = cells.collect();
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(c.chars().count()) + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied(), &mut out);
    for r in rows {
        line(&mut r.iter().map(String::as_str), &mut out);
    }
    out
}

/// `42s`, `5m`, `3h`, `2d`: a short age.
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_aligns_columns_and_does_not_pad_the_last() {
        let rows = vec![
            vec!["web".to_string(), "2/2".to_string(), "ok".to_string()],
            vec!["w".into(), "10/10".into(), "".into()],
        ];
        assert_eq!(render(&["NAME", "TASKS", "X"], &rows, true), "NAME  TASKS  X\nweb   2/2    ok\nw     10/10\n");
        assert_eq!(render(&["A", "B"], &[vec!["1".into(), "2".into()]], false), "A\tB\n1\t2\n");
    }

    #[test]
    fn age_is_short() {
        assert_eq!((age(5), age(120), age(7200), age(200000)), ("5s".into(), "2m".into(), "2h".into(), "2d".into()));
    }
}
