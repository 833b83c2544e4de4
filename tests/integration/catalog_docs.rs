//! docs/messages.md lists the whole message catalog, in catalog order, with the same IDs,
//! codes and texts.

use smsrefresh::message::CATALOG;

#[test]
fn docs_list_exactly_the_catalog() {
    let text = std::fs::read_to_string(super::util::repo().join("docs/messages.md")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').replace("\\|", "|"))
                .collect()
        })
        .collect();
    let want: Vec<Vec<String>> = CATALOG
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.code_hex(),
                m.text.to_string(),
                if m.ibm { "IBM" } else { "smsrefresh" }.to_string(),
            ]
        })
        .collect();
    if rows != want {
        let expected: String = CATALOG
            .iter()
            .map(|m| {
                format!(
                    "| `{}` | `{}` | {} | {} |\n",
                    m.id,
                    m.code_hex(),
                    m.text,
                    if m.ibm { "IBM" } else { "smsrefresh" }
                )
            })
            .collect();
        panic!("docs/messages.md is out of date; its table should read:\n{expected}");
    }
}
