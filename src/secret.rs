//! Where a password comes from: an environment variable or a file, never a value written in a
//! configuration file (`directory.yaml`'s bind password, `target.yaml`'s two passwords). It is
//! read only when a connection is made, and no message ever shows it.

use std::path::PathBuf;

/// A password's source, as a configuration file names it (`KEY_env` or `KEY_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    /// Reads the password (a file's trailing line end removed). `key` is the configuration's
    /// name for it (`bind_password`), which the error names with where it looked — never a
    /// value. An empty variable counts as unset: an empty password is never sent.
    pub fn read(&self, key: &str) -> Result<String, String> {
        match self {
            Secret::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the environment variable {var} ({key}_env) is not set")),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("the file {} ({key}_file): {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_names_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(
            Secret::File(file.clone()).read("lmi_password").unwrap(),
            "s3cret"
        );
        let missing = Secret::File(dir.path().join("nope")).read("admin_password");
        assert!(missing.unwrap_err().contains("(admin_password_file)"));
        let unset = Secret::Env("SMSREFRESH_TEST_NEVER_SET_9F3A".into()).read("bind_password");
        assert_eq!(
            unset.unwrap_err(),
            "the environment variable SMSREFRESH_TEST_NEVER_SET_9F3A (bind_password_env) is not set"
        );
    }
}
