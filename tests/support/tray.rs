//! A tray host on a test's session bus: an `org.kde.StatusNotifierWatcher` (what a desktop
//! panel runs, and what a tray item registers with), and a reader of what the registered
//! item shows — its icon pixels, title and menu (`com.canonical.dbusmenu`) — that can
//! click a menu entry the way a person would. It reads the real indicator the app made, so a
//! wrong count, entry or icon fails the test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::{OwnedVariant, Variant};

const WATCHER_PATH: &str = "/StatusNotifierWatcher";

struct Watcher {
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // AppIndicator passes its object path; others pass a bus name.
        let item = if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        self.items.lock().unwrap().push(item);
    }

    async fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(bus, path)| format!("{bus}{path}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// One menu entry as the tray shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
    pub separator: bool,
}

/// The tray as a person sees it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The icon's pixels (RGBA, as decoded from the PNG the indicator points at).
    pub icon: Vec<u8>,
    /// The item's title (what panels show as its name or tooltip).
    pub label: String,
    /// The menu, top to bottom.
    pub menu: Vec<Entry>,
}

impl Seen {
    /// The labels of the enabled and disabled entries, separators left out.
    pub fn labels(&self) -> Vec<String> {
        self.menu
            .iter()
            .filter(|e| !e.separator)
            .map(|e| e.label.clone())
            .collect()
    }

    /// The entry whose label starts with `prefix`.
    pub fn entry(&self, prefix: &str) -> Option<&Entry> {
        self.menu.iter().find(|e| e.label.starts_with(prefix))
    }
}

/// The running tray host; it stops when dropped.
pub struct TrayHost {
    items: Arc<Mutex<Vec<(String, String)>>>,
    connection: zbus::Connection,
    runtime: tokio::runtime::Runtime,
}

/// Decodes a PNG file to RGBA.
pub fn png_pixels(bytes: &[u8]) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    pixels
}

fn string(v: &OwnedVariant) -> String {
    String::try_from(v.try_clone().unwrap()).unwrap_or_default()
}

/// One dbusmenu node's id and properties, from a `(ia{sv}av)` value.
fn entry(id: i32, props: &HashMap<String, OwnedVariant>) -> Entry {
    Entry {
        id,
        label: props
            .get("label")
            .map(string)
            .unwrap_or_default()
            .replace('_', ""),
        enabled: props
            .get("enabled")
            .map(|v| bool::try_from(v).unwrap_or(true))
            .unwrap_or(true),
        separator: props.get("type").map(string).as_deref() == Some("separator"),
    }
}

/// Flattens the children of a dbusmenu node into entries, depth first.
fn flatten(children: &[Variant<'_>], out: &mut Vec<Entry>) {
    for child in children {
        let child = match child {
            Variant::Variant(inner) => inner.as_ref(),
            other => other,
        };
        let Variant::Structure(s) = child else {
            continue;
        };
        let fields = s.fields();
        let id = i32::try_from(&fields[0]).unwrap_or(-1);
        let props: HashMap<String, OwnedVariant> =
            HashMap::try_from(fields[1].try_clone().unwrap()).unwrap_or_default();
        out.push(entry(id, &props));
        if let Variant::Array(grandchildren) = &fields[2] {
            let grandchildren: Vec<Variant<'_>> = grandchildren.iter().cloned().collect();
            flatten(&grandchildren, out);
        }
    }
}

impl TrayHost {
    /// Serves the watcher on the bus at `address`.
    pub fn start(address: &str) -> TrayHost {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let items = Arc::new(Mutex::new(Vec::new()));
        let connection = runtime.block_on(async {
            zbus::connection::Builder::address(address)
                .name("org.kde.StatusNotifierWatcher")
                .serve_at(
                    WATCHER_PATH,
                    Watcher {
                        items: items.clone(),
                    },
                )
                .build()
                .await
                .unwrap()
        });
        TrayHost {
            items,
            connection,
            runtime,
        }
    }

    fn item(&self) -> Option<(String, String)> {
        self.items.lock().unwrap().last().cloned()
    }

    async fn property(&self, bus: &str, path: &str, name: &str) -> zbus::Result<OwnedVariant> {
        let proxy = zbus::fdo::PropertiesProxy::builder(&self.connection)
            .destination(bus.to_owned())
            .path(path.to_owned())
            .build()
            .await?;
        let interface = zbus::names::InterfaceName::try_from("org.kde.StatusNotifierItem")?;
        Ok(proxy.get(interface, name).await?)
    }

    /// What the registered item shows now (`None` before an item registered).
    pub fn seen(&self) -> Option<Seen> {
        let (bus, path) = self.item()?;
        self.runtime.block_on(async {
            // The icon as pixels (ARGB32, big-endian), turned into RGBA to compare with PNGs.
            let pixmaps = self.property(&bus, &path, "IconPixmap").await.ok()?;
            let pixmaps: Vec<(i32, i32, Vec<u8>)> = Vec::try_from(pixmaps).ok()?;
            let (_, _, argb) = pixmaps.into_iter().next()?;
            let icon = argb
                .chunks_exact(4)
                .flat_map(|p| [p[1], p[2], p[3], p[0]])
                .collect();
            let label = string(&self.property(&bus, &path, "Title").await.ok()?);
            let menu_path = self.property(&bus, &path, "Menu").await.ok()?;
            let menu_path = zbus::OwnedObjectPath::try_from(menu_path).ok()?;
            let reply = self
                .connection
                .call_method(
                    Some(bus.as_str()),
                    menu_path.as_str(),
                    Some("com.canonical.dbusmenu"),
                    "GetLayout",
                    &(0i32, -1i32, Vec::<String>::new()),
                )
                .await
                .ok()?;
            type Node = (i32, HashMap<String, OwnedVariant>, Vec<OwnedVariant>);
            let (_revision, (_root, _props, children)): (u32, Node) =
                reply.body().deserialize().ok()?;
            let children: Vec<Variant<'_>> = children
                .iter()
                .map(|c| (**c).try_clone().unwrap())
                .collect();
            let mut menu = Vec::new();
            flatten(&children, &mut menu);
            Some(Seen { icon, label, menu })
        })
    }

    /// Waits up to `secs` until the tray shows what `ok` accepts; returns it.
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let seen = self.seen();
            if let Some(seen) = seen.as_ref().filter(|s| ok(s)) {
                return seen.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the tray did not show {what} within {secs} s; it shows {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks menu entry `id`, as a person would.
    pub fn click(&self, id: i32) {
        let (bus, path) = self.item().expect("no tray item registered");
        self.runtime.block_on(async {
            let menu_path = self.property(&bus, &path, "Menu").await.unwrap();
            let menu_path = zbus::OwnedObjectPath::try_from(menu_path).unwrap();
            self.connection
                .call_method(
                    Some(bus.as_str()),
                    menu_path.as_str(),
                    Some("com.canonical.dbusmenu"),
                    "Event",
                    &(id, "clicked", Variant::from(0i32), 0u32),
                )
                .await
                .unwrap();
        });
    }
}
