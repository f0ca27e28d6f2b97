//! The environment WebKitGTK reads when the window starts: set once by `main`, before any
//! thread exists, and never over a value the person set themselves.
//!
//! Two jobs. Memory: three defaults switch off what only costs memory here (GTK's own OpenGL,
//! the GPU-buffer renderer, the JIT). Isolation: the web process runs in WebKit's bubblewrap
//! sandbox (no network, a read-only view of the system, a seccomp filter) wherever bubblewrap
//! works — the same test WebKit itself makes inside containers. Only when the web process is
//! sandboxed does the app also name WebKit's render device: without a name WebKit asks EGL in
//! this process which GPU the web process should use, which maps a GL driver here (under
//! Mesa's software renderer libLLVM, about 17 MB), although with the GPU-buffer renderer off
//! the web process never opens that device. The two go together because of how WebKitGTK 2.50
//! is built: it starts following GTK's settings (dark theme, font, DPI) when its display object
//! is first made, and that happens either in the EGL lookup or when the sandboxed web process
//! is launched; naming the device without the sandbox loses the dark theme (the desktop
//! end-to-end test checks both themes).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The defaults that only cost memory when left on (docs/benchmarks.md has what each saves):
/// - `GDK_GL=disable`: GTK's own OpenGL. The app draws nothing with it (the web view composites
///   in its web process), and initialising it maps a GL driver into the app process even
///   without a window.
/// - `WEBKIT_DISABLE_DMABUF_RENDERER=1`: the web process hands its frames over in shared memory
///   instead of GPU buffers; a few small screens do not need the GPU path.
/// - `JSC_useJIT=0`: JavaScriptCore interprets instead of compiling to machine code. The UI's
///   script is small, and no JIT means no writable-and-executable memory in the web process.
const QUIET_DEFAULTS: [(&str, &str); 3] = [
    ("GDK_GL", "disable"),
    (DMABUF_OFF_VAR, "1"),
    ("JSC_useJIT", "0"),
];

const DMABUF_OFF_VAR: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";
/// WebKit (4.1 API) sandboxes its web processes with bubblewrap when this is `1`.
const SANDBOX_VAR: &str = "WEBKIT_FORCE_SANDBOX";
/// WebKit's own way to refuse the sandbox; the app respects it.
const NO_SANDBOX_VAR: &str = "WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS";
/// The GPU render node WebKit hands to the web process.
const RENDER_DEVICE_VAR: &str = "WEBKIT_WEB_RENDER_DEVICE_FILE";
/// Where WebKitGTK (as Debian and Ubuntu build it) runs bubblewrap from.
const BWRAP: &str = "/usr/bin/bwrap";

/// Whether the web process will run in WebKit's bubblewrap sandbox, and why not if not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// Bubblewrap works here: the web process runs sandboxed.
    Bubblewrap,
    /// The environment turned it off (`WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS`, or
    /// `WEBKIT_FORCE_SANDBOX` set to something other than `1`).
    RefusedByEnvironment,
    /// Inside Flatpak or Snap WebKit sandboxes through their portal instead, which does not
    /// start WebKit's settings listener early; the render device is left to WebKit.
    Portal,
    /// Bubblewrap cannot make its namespaces here (missing, or not allowed).
    Unavailable,
}

/// What the window app sets before it starts, and how its web process will be isolated.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Variables to set, each one the environment does not set already.
    pub set: Vec<(&'static str, OsString)>,
    pub sandbox: Sandbox,
}

/// What the plan reads from the machine, so that it can be tested without one.
pub struct Machine<'a> {
    /// The current value of an environment variable.
    pub var: &'a dyn Fn(&str) -> Option<OsString>,
    /// Whether this runs inside Flatpak or Snap.
    pub in_portal_sandbox: bool,
    /// Whether bubblewrap can run a process in fresh namespaces (asked only when needed).
    pub bubblewrap_works: &'a dyn Fn() -> bool,
    /// The entries of `/dev/dri`.
    pub dri_entries: Vec<PathBuf>,
}

/// Decides what to set (pure: reads only `machine`).
pub fn plan(machine: &Machine<'_>) -> Plan {
    let var = machine.var;
    let mut set: Vec<(&'static str, OsString)> = QUIET_DEFAULTS
        .iter()
        .filter(|(name, _)| var(name).is_none())
        .map(|(name, value)| (*name, OsString::from(value)))
        .collect();
    let value_of = |name: &str| -> Option<OsString> {
        var(name).or_else(|| set.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
    };
    let sandbox = if var(NO_SANDBOX_VAR).is_some_and(|v| v != "0") {
        Sandbox::RefusedByEnvironment
    } else if machine.in_portal_sandbox {
        Sandbox::Portal
    } else {
        match var(SANDBOX_VAR) {
            // Forced by the environment: taken as asked, without a probe.
            Some(v) if v == "1" => Sandbox::Bubblewrap,
            // Any other value leaves WebKit's default (off) in place.
            Some(_) => Sandbox::RefusedByEnvironment,
            None if (machine.bubblewrap_works)() => Sandbox::Bubblewrap,
            None => Sandbox::Unavailable,
        }
    };
    // WebKit reads any value but "0" as "off".
    let dmabuf_off = value_of(DMABUF_OFF_VAR).is_some_and(|v| v != "0");
    let device_unset = var(RENDER_DEVICE_VAR).is_none();
    if sandbox == Sandbox::Bubblewrap {
        if var(SANDBOX_VAR).is_none() {
            set.push((SANDBOX_VAR, "1".into()));
        }
        if dmabuf_off && device_unset {
            set.push((
                RENDER_DEVICE_VAR,
                first_render_node(&machine.dri_entries).into_os_string(),
            ));
        }
    }
    Plan { set, sandbox }
}

/// The first render node, the one WebKit's own DRM fallback picks, or `/dev/null` on a
/// machine without one (where EGL's answer would have been "none").
fn first_render_node(entries: &[PathBuf]) -> PathBuf {
    entries
        .iter()
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("renderD"))
        })
        .min()
        .cloned()
        .unwrap_or_else(|| "/dev/null".into())
}

/// WebKit's own test of whether bubblewrap works (it makes it inside containers): a process in
/// fresh namespaces of every kind, with the root file system bound read-only.
fn bubblewrap_works(bwrap: &Path) -> bool {
    Command::new(bwrap)
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
        .args(["--unshare-all", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Reads this machine and sets the plan's variables. Call it before any thread exists: nothing
/// may read the environment while it changes.
pub fn apply() -> Sandbox {
    let var = |name: &str| std::env::var_os(name);
    let snap = ["SNAP", "SNAP_NAME", "SNAP_REVISION"]
        .iter()
        .all(|name| std::env::var_os(name).is_some());
    let machine = Machine {
        var: &var,
        in_portal_sandbox: Path::new("/.flatpak-info").exists() || snap,
        bubblewrap_works: &|| bubblewrap_works(Path::new(BWRAP)),
        dri_entries: std::fs::read_dir("/dev/dri")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect(),
    };
    let plan = plan(&machine);
    for (name, value) in plan.set {
        std::env::set_var(name, value);
    }
    plan.sandbox
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    fn plan_with(
        env: &[(&str, &str)],
        portal: bool,
        bwrap_ok: bool,
        dri: &[&str],
    ) -> (Plan, usize) {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let var = |name: &str| env.get(name).cloned();
        let asked = Cell::new(0);
        let probe = || {
            asked.set(asked.get() + 1);
            bwrap_ok
        };
        let machine = Machine {
            var: &var,
            in_portal_sandbox: portal,
            bubblewrap_works: &probe,
            dri_entries: dri.iter().map(|n| Path::new("/dev/dri").join(n)).collect(),
        };
        (plan(&machine), asked.get())
    }

    fn value<'a>(plan: &'a Plan, name: &str) -> Option<&'a str> {
        plan.set
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.to_str())
    }

    #[test]
    fn with_bubblewrap_the_web_process_is_sandboxed_and_the_render_device_named() {
        let dri = ["card1", "renderD129", "card0", "renderD128", "by-path"];
        let (plan, asked) = plan_with(&[], false, true, &dri);
        assert_eq!(plan.sandbox, Sandbox::Bubblewrap);
        assert_eq!(asked, 1);
        assert_eq!(value(&plan, "GDK_GL"), Some("disable"));
        assert_eq!(value(&plan, DMABUF_OFF_VAR), Some("1"));
        assert_eq!(value(&plan, "JSC_useJIT"), Some("0"));
        assert_eq!(value(&plan, SANDBOX_VAR), Some("1"));
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), Some("/dev/dri/renderD128"));
        let (plan, _) = plan_with(&[], false, true, &[]);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), Some("/dev/null"));
    }

    #[test]
    fn without_the_sandbox_webkit_looks_up_its_render_device_itself() {
        // Naming the device without the sandbox would lose the dark theme (see the module).
        let (plan, _) = plan_with(&[], false, false, &["renderD128"]);
        assert_eq!(plan.sandbox, Sandbox::Unavailable);
        assert_eq!(value(&plan, SANDBOX_VAR), None);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);
        assert_eq!(value(&plan, "GDK_GL"), Some("disable"));

        let (plan, asked) = plan_with(&[(NO_SANDBOX_VAR, "1")], false, true, &[]);
        assert_eq!(plan.sandbox, Sandbox::RefusedByEnvironment);
        assert_eq!(
            asked, 0,
            "bubblewrap is not run when the sandbox is refused"
        );
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);

        let (plan, asked) = plan_with(&[(SANDBOX_VAR, "0")], false, true, &[]);
        assert_eq!((plan.sandbox, asked), (Sandbox::RefusedByEnvironment, 0));
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);

        let (plan, asked) = plan_with(&[], true, true, &[]);
        assert_eq!(plan.sandbox, Sandbox::Portal);
        assert_eq!(asked, 0);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);
    }

    #[test]
    fn what_the_environment_sets_is_kept() {
        let env = [
            ("GDK_GL", "gles"),
            (DMABUF_OFF_VAR, "0"),
            (RENDER_DEVICE_VAR, ""),
            (NO_SANDBOX_VAR, "0"),
        ];
        let (plan, _) = plan_with(&env, false, true, &["renderD128"]);
        assert_eq!(plan.sandbox, Sandbox::Bubblewrap);
        assert_eq!(value(&plan, "GDK_GL"), None);
        assert_eq!(value(&plan, DMABUF_OFF_VAR), None);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);
        assert_eq!(value(&plan, "JSC_useJIT"), Some("0"));

        // The GPU-buffer renderer on (by the environment): WebKit needs its real device.
        let (plan, _) = plan_with(&[(DMABUF_OFF_VAR, "0")], false, true, &["renderD128"]);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), None);
        assert_eq!(value(&plan, SANDBOX_VAR), Some("1"));

        // A sandbox forced by the environment is taken as asked, without a probe.
        let (plan, asked) = plan_with(&[(SANDBOX_VAR, "1")], false, false, &[]);
        assert_eq!((plan.sandbox, asked), (Sandbox::Bubblewrap, 0));
        assert_eq!(value(&plan, SANDBOX_VAR), None);
        assert_eq!(value(&plan, RENDER_DEVICE_VAR), Some("/dev/null"));
    }

    #[test]
    fn the_bubblewrap_probe_runs_the_real_program() {
        // A program that is not there is "unavailable", never a panic.
        assert!(!bubblewrap_works(Path::new("/nonexistent/bwrap")));
        // `false` exits non-zero whatever its arguments: unavailable.
        assert!(!bubblewrap_works(Path::new("/bin/false")));
    }
}
