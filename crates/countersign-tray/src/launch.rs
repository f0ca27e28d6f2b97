//! Starts the window app on demand. The window app keeps to one instance itself: launching it
//! while its window is open hands the link to that window and ends at once.

use std::ffi::OsString;
use std::process::{Command, Stdio};

/// How the window app is started.
#[derive(Clone, Debug)]
pub struct Launcher {
    program: OsString,
    args: Vec<OsString>,
}

/// The window app could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the window app {program:?}: {source}")]
pub struct LaunchError {
    program: OsString,
    #[source]
    source: std::io::Error,
}

impl Launcher {
    /// A launcher for `program` with `args` before any link.
    pub fn new(program: OsString, args: Vec<OsString>) -> Launcher {
        Launcher { program, args }
    }

    /// The command line for opening `link` (or just the window).
    pub fn command_line(&self, link: Option<&str>) -> Vec<OsString> {
        let mut line = vec![self.program.clone()];
        line.extend(self.args.iter().cloned());
        line.extend(link.map(OsString::from));
        line
    }

    /// Starts the window app, on `link` if given; the process is reaped when it ends.
    pub fn open(&self, link: Option<&str>) -> Result<(), LaunchError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .args(link)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| LaunchError {
                program: self.program.clone(),
                source,
            })?;
        std::thread::Builder::new()
            .name("window-app".into())
            .spawn(move || {
                let _ = child.wait();
            })
            .map(|_| ())
            .map_err(|source| LaunchError {
                program: self.program.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_comes_last_and_a_missing_program_is_an_error() {
        let launcher = Launcher::new("app".into(), vec!["--profile".into(), "p.json".into()]);
        assert_eq!(
            launcher.command_line(Some("countersign://request/req_1")),
            ["app", "--profile", "p.json", "countersign://request/req_1"]
        );
        assert_eq!(launcher.command_line(None), ["app", "--profile", "p.json"]);
        let missing = Launcher::new("/nonexistent/countersign-desktop".into(), vec![]);
        let error = missing.open(None).unwrap_err().to_string();
        assert!(
            error.contains("/nonexistent/countersign-desktop"),
            "{error}"
        );
    }
}
