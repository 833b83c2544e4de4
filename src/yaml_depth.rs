//! A guard run before any YAML is parsed: nesting deeper than [`MAX_DEPTH`] is refused at
//! once, naming the line. The YAML parser's time grows with the square of the nesting, so a
//! hostile `[[[[…]]]]` of 100,000 levels would otherwise hold a run for minutes; no policy,
//! topology or registry needs more than a handful of levels.

/// The deepest nesting accepted: flow brackets (`[`, `{`) plus block indentation levels.
pub const MAX_DEPTH: usize = 64;

/// Scans `text`; on nesting deeper than [`MAX_DEPTH`], the 1-based line where it happens.
pub fn check(text: &str) -> Result<(), (u64, String)> {
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            // Block nesting: the open indentation levels, `- ` items counting as one more.
            let mut indent = line.len() - trimmed.len();
            let mut rest = trimmed;
            while let Some(r) = rest.strip_prefix("- ") {
                indent += 2;
                rest = r.trim_start_matches(' ');
            }
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut quote: Option<char> = None;
        for c in trimmed.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            if flow + indents.len() > MAX_DEPTH {
                return Err((
                    n as u64 + 1,
                    format!("nested more than {MAX_DEPTH} levels deep; refused before parsing"),
                ));
            }
        }
        if indents.len() > MAX_DEPTH {
            return Err((
                n as u64 + 1,
                format!("nested more than {MAX_DEPTH} levels deep; refused before parsing"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_yaml_passes_and_deep_nesting_is_refused_quickly() {
        let ok = "a:\n  b: [1, [2, {c: \"[[[[\"}]]\n  - x\n# [[[[[[[\n";
        assert!(check(ok).is_ok());
        let deep = format!("users: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let t = std::time::Instant::now();
        assert_eq!(check(&deep).map_err(|e| e.0), Err(1));
        assert!(t.elapsed().as_millis() < 100);
        let block: String = (0..70)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(check(&block).map_err(|e| e.0), Err(65));
        let flat = format!(
            "{}\n",
            (0..70)
                .map(|i| format!("k{i}: 1"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(check(&flat).is_ok());
        assert!(check(&format!("x: {}{}", "[".repeat(64), "]".repeat(64))).is_err());
        assert!(check(&format!("x: {}{}", "[".repeat(60), "]".repeat(60))).is_ok());
    }
}
