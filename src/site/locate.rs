//! Finding the line of a key path in a YAML text.
//!
//! serde_yaml reports positions for syntax and type errors but not for values that parse
//! and are then found wrong (an unknown replica set, say). This finds the line of a key
//! path such as `servers.web2-webseald-cruz.replica_sets` by following block-mapping
//! indentation, and falls back to a flow mapping on the parent's line.

/// The 1-based line of the last component of `path` found in `text`.
pub fn locate(text: &str, path: &[&str]) -> Option<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let indent = line.len() - line.trim_start().len();
            let body = line.trim_start().trim_start_matches("- ");
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if let Some(min) = min_indent
                && indent < min
                && i > from
            {
                break;
            }
            if key_at_start(body, key) {
                hit = Some((i, indent + 1));
                break;
            }
            if found == Some(i) || (i == from && found.is_some()) {
                // Flow mapping on the parent's own line: `name: {replica_sets: [...]}`.
                if line.contains(&format!("{key}:")) {
                    hit = Some((i, indent + 1));
                    break;
                }
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i);
                from = i;
                min_indent = Some(indent);
            }
            None => break,
        }
    }
    found.map(|i| i as u64 + 1)
}

fn key_at_start(body: &str, key: &str) -> bool {
    for q in ["", "\"", "'"] {
        if let Some(rest) = body
            .strip_prefix(q)
            .and_then(|b| b.strip_prefix(key))
            .and_then(|b| b.strip_prefix(q))
            && rest.starts_with(':')
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "realms:\n  ibm.com: {replica_sets: [www]}\nservers:\n  a-webseald-b:\n    replica_sets: [www]\n  c-webseald-d: {replica_sets: [x]}\n";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(TEXT, &["servers"]), Some(3));
        assert_eq!(
            locate(TEXT, &["servers", "a-webseald-b", "replica_sets"]),
            Some(5)
        );
        assert_eq!(
            locate(TEXT, &["servers", "c-webseald-d", "replica_sets"]),
            Some(6)
        );
        assert_eq!(
            locate(TEXT, &["realms", "ibm.com", "replica_sets"]),
            Some(2)
        );
        assert_eq!(locate(TEXT, &["nothing"]), None);
    }
}
